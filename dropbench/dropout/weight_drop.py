"""Weight-drop (Merity et al. 2017): DropConnect (Wan et al. 2013) on the hidden-to-hidden
weights of an LSTM/GRU.

One mask on `weight_hh` is drawn per forward call (one BPTT window) and shared by every time
step and sequence in it, so the recurrence is regularised while the layer still runs as one
fused nn.LSTM / nn.GRU kernel (cuDNN on GPU): the dropped matrix is passed to the unchanged
module through `torch.func.functional_call`, and the stored parameter is never modified.
"""

import torch
from torch import nn
from torch.func import functional_call

from dropbench.dropout.base import RECURRENT_CELLS, Factories
from dropbench.dropout.embedding import EmbeddingDropout
from dropbench.dropout.standard import BernoulliDropout, bernoulli_dropout


def drop_weight(weight: torch.Tensor, p: float) -> torch.Tensor:
    """Zero each weight with probability p and scale the rest by 1/(1-p)."""
    return bernoulli_dropout(weight, p)  # the fast CPU mask of masks.py; F.dropout on CUDA


class WeightDropRNN(nn.Module):
    """A one-layer nn.LSTM/nn.GRU whose `weight_hh_l0` is dropped afresh each training forward."""

    drops, mask_examples, mask_steps = "recurrent weights", "per batch", "per sequence"

    def __init__(self, cell: str, input_size: int, hidden_size: int, p: float):
        super().__init__()
        self.rnn = RECURRENT_CELLS[cell](input_size, hidden_size)
        self.p = p

    def effective_weights(self) -> dict:
        """The parameters the kernel runs with: weight_hh dropped in training, else as stored."""
        weights = dict(self.rnn.named_parameters())
        if self.training and self.p > 0:
            weights["weight_hh_l0"] = drop_weight(weights["weight_hh_l0"], self.p)
        return weights

    def forward(self, x: torch.Tensor, state=None):  # (T, B, I) -> (T, B, H), state
        if not self.training or self.p == 0:
            return self.rnn(x, state)
        return functional_call(self.rnn, self.effective_weights(), (x, state))

    def extra_repr(self) -> str:
        return f"p_recurrent={self.p}"


FACTORIES = {"weight_drop": Factories(
    activation=lambda p, cfg: BernoulliDropout(p),
    recurrent=lambda cell, i, h, p, cfg: WeightDropRNN(cell, i, h, p),
    embedding=lambda n, d, p, cfg: EmbeddingDropout(n, d, p),
)}
