"""Variational (locked) dropout, Gal & Ghahramani 2016: one mask per sequence, shared by every
time step, on the inputs and outputs of each recurrent layer.

Their recurrent-connection mask (on h_{t-1}) would force a Python loop over time; here, as in
AWD-LSTM (Merity et al. 2017), the recurrent connections are regularised by weight-drop on
`weight_hh` instead (dropout.p_recurrent), which keeps the fused kernel. The difference: that
mask is shared by the whole batch and drops single weights rather than whole units.
"""

import torch

from dropbench.dropout.base import RateDropout
from dropbench.dropout.embedding import EmbeddingDropout
from dropbench.dropout.registry import register
from dropbench.dropout.weight_drop import WeightDropRNN


def locked_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """(T, B, H) -> (T, B, H): a (1, B, H) mask broadcast over time, kept units scaled 1/(1-p)."""
    mask = x.new_empty(1, *x.shape[1:]).bernoulli_(1 - p) / (1 - p)
    return x * mask


class LockedDropout(RateDropout):
    drop = staticmethod(locked_dropout)


register(
    "variational",
    "locked dropout: one mask per sequence shared across time (Gal & Ghahramani 2016), plus "
    "weight-drop on weight_hh with dropout.p_recurrent",
    places=("recurrent",),
    activation=lambda p, cfg: LockedDropout(p),
    recurrent=lambda cell, i, h, p, cfg: WeightDropRNN(cell, i, h, p),
    embedding=lambda n, d, p, cfg: EmbeddingDropout(n, d, p),
)
