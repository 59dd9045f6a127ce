"""Locked dropout (Merity et al. 2017, after Gal & Ghahramani 2016): one mask per sequence,
shared by every time step, on the inputs and outputs of each recurrent layer, plus optional
weight-drop on `weight_hh` (dropout.p_recurrent) for the recurrent connections.

This is the AWD-LSTM arrangement: the recurrent connections are regularised by DropConnect on
the hidden-to-hidden matrix, one mask for the whole batch, so every layer keeps the fused
nn.LSTM / nn.GRU kernel. Gal's own recurrent dropout (a per-example mask on h_{t-1}) is the
`variational` scheme (variational.py).
"""

import torch

from dropbench.dropout.base import Factories, RateDropout
from dropbench.dropout.embedding import EmbeddingDropout
from dropbench.dropout.masks import keep_factors
from dropbench.dropout.weight_drop import WeightDropRNN


def locked_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """(T, B, H) -> (T, B, H): a (1, B, H) mask broadcast over time, kept units scaled 1/(1-p)."""
    mask = keep_factors((1, *x.shape[1:]), 1 - p, 1 / (1 - p), x.dtype, x.device)
    return x * mask


class LockedDropout(RateDropout):
    drop = staticmethod(locked_dropout)
    mask_steps = "per sequence"  # one (1, B, H) mask for every time step


FACTORIES = {"locked": Factories(
    activation=lambda p, cfg: LockedDropout(p),
    recurrent=lambda cell, i, h, p, cfg: WeightDropRNN(cell, i, h, p),
    embedding=lambda n, d, p, cfg: EmbeddingDropout(n, d, p),
)}
