"""LSTM/GRU word-level language models (Zaremba et al. 2014; Merity et al. 2017).

    tokens (T, B) -> embedding [p_embed] -> dropout [p_input] -> layer 1 -> dropout [p] -> ...
                  -> layer n -> dropout [p_output] -> linear -> logits (T, B, V)

with `p_recurrent` on the recurrent connections inside every layer (`rnn_places`,
places.py).

Every recurrent layer is its own one-layer module (fused nn.LSTM/nn.GRU unless the scheme says
otherwise), so the scheme decides what the dropout modules between them do (a fresh mask per
time step for `standard`, one per sequence for `variational`) and how the recurrent weights are
regularised (`p_recurrent`). All modules come from the dropout registry.

Activation regularisation (Merity et al. 2017), `model.ar` and `model.tar`: in training the loss
gets ar * mean(dropped last-layer output^2) + tar * mean((h_t - h_{t-1})^2) over the raw
last-layer outputs, means over all elements as in the authors' code (`regularizer`).
"""

import torch
from torch import nn

from dropbench.dropout import make_dropout, make_embedding, make_recurrent, plan_rates
from dropbench.errors import DropbenchError
from dropbench.models.places import rnn_places


class RNNLanguageModel(nn.Module):
    def __init__(self, vocab_size: int, embed_size: int, model_cfg, dropout_cfg,
                 ar: float = 0.0, tar: float = 0.0):
        super().__init__()
        self.ar, self.tar = ar, tar
        self.penalty = None  # AR + TAR of the last training forward, taken by regularizer()
        d, cell, hidden = dropout_cfg, model_cfg.name, list(model_cfg.hidden)
        at = {place.role: place for place in rnn_places(model_cfg)}
        rate = plan_rates(cell, list(at.values()), d)
        self.embedding = make_embedding(d, vocab_size, embed_size, rate["embedding"][0],
                                        at["embedding"])
        self.drop_input = make_dropout(d, rate["input"][0], at["input"])
        sizes = [embed_size, *hidden]
        self.layers = nn.ModuleList(
            make_recurrent(d, cell, n_in, n_out, p, at["recurrent"])
            for n_in, n_out, p in zip(sizes[:-1], sizes[1:], rate["recurrent"], strict=True)
        )
        self.drop_between = nn.ModuleList(make_dropout(d, p, at["hidden"])
                                          for p in rate["hidden"])
        self.drop_output = make_dropout(d, rate["output"][0], at["output"])
        self.decoder = nn.Linear(hidden[-1], vocab_size)
        if model_cfg.tied:
            self.decoder.weight = self.embedding.weight  # (V, E), one matrix for both ends

    def forward(self, tokens, state=None):  # (T, B) -> logits (T, B, V), per-layer states
        x = self.drop_input(self.embedding(tokens))  # (T, B, E)
        state = state or [None] * len(self.layers)
        new_state = []
        for i, layer in enumerate(self.layers):
            x, layer_state = layer(x, state[i])  # (T, B, H_i)
            new_state.append(layer_state)
            if i < len(self.drop_between):
                x = self.drop_between[i](x)
        dropped = self.drop_output(x)
        if self.training and (self.ar or self.tar) and torch.is_grad_enabled():
            self.penalty = (self.ar * dropped.pow(2).mean()
                            + self.tar * (x[1:] - x[:-1]).pow(2).mean())
        return self.decoder(dropped), new_state

    def regularizer(self):
        """The AR/TAR term of the last training forward (0 when off), added to the loss once."""
        penalty, self.penalty = self.penalty, None
        return 0.0 if penalty is None else penalty

    def init_weights(self, scale) -> None:
        """Uniform in +-scale everywhere (Zaremba et al.); with scale None keep PyTorch's
        defaults for the recurrent layers and use +-0.1 for the words (Merity et al.)."""
        if scale is not None:
            for w in self.parameters():
                nn.init.uniform_(w, -scale, scale)
            return
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)


def build_rnn_lm(model_cfg, dropout_cfg, data) -> RNNLanguageModel:
    hidden = list(model_cfg.hidden)
    if getattr(data, "task", None) != "lm":
        raise DropbenchError(f"model={model_cfg.name} is a language model; pick a text dataset "
                             f"(dataset=ptb or dataset=textdir)")
    if not hidden or any(h < 1 for h in hidden):
        raise DropbenchError(f"model.hidden={hidden} needs one width >= 1 per layer")
    embed = model_cfg.embed_size or hidden[0]
    if model_cfg.tied and hidden[-1] != embed:
        raise DropbenchError(f"model.tied=true needs the last hidden width ({hidden[-1]}) to "
                             f"equal model.embed_size ({embed}); change one of them")
    ar, tar = model_cfg.get("ar", 0.0), model_cfg.get("tar", 0.0)  # absent: off
    if ar < 0 or tar < 0:
        raise DropbenchError(f"model.ar={ar} and model.tar={tar} must be >= 0 (0 = off)")
    if model_cfg.init_scale is not None and model_cfg.init_scale <= 0:
        raise DropbenchError(f"model.init_scale={model_cfg.init_scale} must be > 0 (or null)")
    model = RNNLanguageModel(data.vocab_size, embed, model_cfg, dropout_cfg, ar, tar)
    model.init_weights(model_cfg.init_scale)
    return model
