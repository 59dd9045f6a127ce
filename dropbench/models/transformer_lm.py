"""A decoder-only Transformer language model (the decoder of Vaswani et al. 2017 without
cross-attention, as GPT):

    tokens (T, B) -> token embedding + learned position embedding -> dropout [p_input]
        -> model.depth causal pre-norm blocks (transformer.py) -> LayerNorm
        -> linear (tied to the token embedding with model.tied) -> logits (T, B, V)

It reads the (T, B) windows of the language-model task (engine/lm.py) like the LSTM, but it has
no state to carry: its context is the window itself, model.bptt tokens, so each window is
predicted from scratch (a token sees the earlier tokens of its window only). `forward` takes the
task's state and returns None in its place, so the task runs it unchanged. The places for
dropout are `transformer_places` (places.py).
"""

import torch
from torch import nn

from dropbench.dropout import make_dropout, plan_rates
from dropbench.errors import DropbenchError
from dropbench.models.places import transformer_places
from dropbench.models.transformer import blocks

INIT_STD = 0.02  # of the embeddings and every linear weight (Radford et al. 2019's GPT-2)


class TransformerLM(nn.Module):
    def __init__(self, vocab_size: int, model_cfg, dropout_cfg):
        super().__init__()
        dim = model_cfg.dim
        at = {place.role: place for place in transformer_places(model_cfg)}
        rate = plan_rates(model_cfg.name, list(at.values()), dropout_cfg)
        self.embedding = nn.Embedding(vocab_size, dim)
        self.position = nn.Parameter(torch.zeros(model_cfg.bptt, dim))
        self.drop_input = make_dropout(dropout_cfg, rate["input"][0], at["input"])
        self.blocks = blocks(model_cfg, dropout_cfg, rate, at, causal=True)
        self.norm = nn.LayerNorm(dim)
        self.decoder = nn.Linear(dim, vocab_size)
        self.init_weights()
        if model_cfg.tied:
            self.decoder.weight = self.embedding.weight  # (V, D), one matrix for both ends

    def init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=INIT_STD)
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.embedding.weight, std=INIT_STD)
        nn.init.normal_(self.position, std=INIT_STD)

    def forward(self, tokens, state=None):  # (T, B) -> logits (T, B, V), no state
        steps = tokens.size(0)
        if steps > self.position.size(0):
            raise DropbenchError(f"a window of {steps} tokens is longer than the position table "
                                 f"(model.bptt={self.position.size(0)})")
        x = self.embedding(tokens.t()) + self.position[:steps]  # (B, T, D)
        x = self.norm(self.blocks(self.drop_input(x)))
        return self.decoder(x).transpose(0, 1), None


def build_transformer_lm(model_cfg, dropout_cfg, data) -> TransformerLM:
    if getattr(data, "task", None) != "lm":
        raise DropbenchError(f"model={model_cfg.name} is a language model; pick a text dataset "
                             f"(dataset=ptb or dataset=textdir)")
    return TransformerLM(data.vocab_size, model_cfg, dropout_cfg)
