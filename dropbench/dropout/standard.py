"""Standard (inverted) Bernoulli dropout, Srivastava et al. 2014 as implemented in practice:
units are zeroed with probability p during training and the survivors scaled by 1/(1-p), so
evaluation needs no rescaling and is the identity."""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dropbench.dropout.base import RateDropout
from dropbench.dropout.masks import keep_mask
from dropbench.dropout.params import AnyUnitRates, RecurrentRates
from dropbench.dropout.registry import register


def bernoulli_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    if not training or p == 0:
        return x
    if x.device.type != "cpu":
        return F.dropout(x, p, training)  # one fused kernel on CUDA
    # On the CPU torch's bernoulli_ dominates the cost of F.dropout; see masks.py.
    return x * keep_mask(x.shape, 1 - p).to(x.dtype).mul_(1 / (1 - p))


class BernoulliDropout(RateDropout):
    drop = staticmethod(bernoulli_dropout)


@dataclass
class StandardParams(AnyUnitRates):
    pass


@dataclass
class NoneParams(RecurrentRates):
    """`none` keeps every rate key (all 0) so sweeps can set them; a nonzero rate is refused."""


register(
    "standard",
    "inverted Bernoulli dropout: drop units with probability p, scale survivors by 1/(1-p)",
    StandardParams,
    kinds=("dense", "conv", "sequence"),
    activation=lambda p, cfg: BernoulliDropout(p),
)
register("none", "no dropout anywhere (the baseline)", NoneParams)
