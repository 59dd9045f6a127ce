"""Multiplicative Gaussian dropout (Srivastava et al. 2014, section 10): each unit is
multiplied by noise drawn from N(1, p/(1-p)) instead of a scaled Bernoulli mask. The noise
has the same mean (1) and variance (p/(1-p)) as inverted Bernoulli dropout's multiplier, so
the rate p means the same thing in both; evaluation is the identity."""

import math

import torch

from dropbench.dropout.base import Factories, RateDropout


def gaussian_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    std = math.sqrt(p / (1.0 - p))
    return x * (1.0 + std * torch.randn_like(x))


class GaussianDropout(RateDropout):
    drop = staticmethod(gaussian_dropout)

    def extra_repr(self) -> str:
        return f"p={self.p}, std={math.sqrt(self.p / (1 - self.p)):.4g}"


FACTORIES = {"gaussian": Factories(activation=lambda p, cfg: GaussianDropout(p))}
