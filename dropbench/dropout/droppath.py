"""Stochastic depth (Huang, Sun, Liu, Sedra & Weinberger 2016, "Deep Networks with Stochastic
Depth"), known as DropPath: in training, a residual block x + f(x) skips its branch f for a
whole example with probability p, so the example passes through the block as x alone. The
network is shallower on average during training and the full depth at test.

The module sits on the branch output, before the sum with the skip path (models/resnet.py), and
draws one Bernoulli keep bit per example: a dropped example loses every channel and position of
the branch. Kept branches are scaled by 1/(1-p) in training (inverted, as timm's drop_path) so
evaluation is the identity; Huang et al. leave training unscaled and multiply each branch by its
survival probability 1-p at test instead, which has the same expectation (a declared deviation,
catalog.py). The rate per block is set by the plan: `dropout.p_branch` is the last block's rate
and earlier blocks get rates rising linearly from 0 (ranges.depth_rates; timm's drop_path_rate).
"""

import torch

from dropbench.dropout.base import Factories, RateDropout
from dropbench.dropout.masks import keep_factors


def drop_path(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """x (B, ...) -> same shape: each example's whole slice zeroed with probability p, the kept
    ones scaled by 1/(1-p)."""
    if not training or p == 0:
        return x
    per_example = (x.shape[0],) + (1,) * (x.dim() - 1)  # broadcasts over channels and positions
    return x * keep_factors(per_example, 1 - p, 1 / (1 - p), x.dtype, x.device)


class DropPath(RateDropout):
    drops = "residual branches"
    drop = staticmethod(drop_path)


FACTORIES = {"droppath": Factories(activation=lambda p, cfg: DropPath(p))}
