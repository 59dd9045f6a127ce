"""Alpha dropout for self-normalising (SELU) networks, Klambauer et al. 2017, section 3.

Dropped units are set to SELU's negative saturation value alpha' = -lambda * alpha instead of
0, then an affine map a * x + b restores zero mean and unit variance for inputs that have
them. With keep probability q = 1 - p:
    a = (q + alpha'^2 q (1 - q)) ** -1/2,   b = -a (1 - q) alpha'.
Evaluation is the identity. Use it with `model.activation=selu` (LeCun-normal init)."""

import math

import torch

from dropbench.dropout.base import Factories, RateDropout
from dropbench.dropout.masks import keep_factors  # fast on the CPU

SELU_ALPHA = 1.6732632423543772
SELU_LAMBDA = 1.0507009873554805
ALPHA_PRIME = -SELU_LAMBDA * SELU_ALPHA  # SELU's limit for x -> -inf


def alpha_affine(p: float) -> tuple[float, float]:
    """The (a, b) that keep mean 0 / variance 1 after setting dropped units to alpha'."""
    q = 1.0 - p
    a = 1.0 / math.sqrt(q + ALPHA_PRIME**2 * q * (1.0 - q))
    return a, -a * (1.0 - q) * ALPHA_PRIME


def alpha_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    keep = keep_factors(x.shape, 1.0 - p, 1.0, x.dtype, x.device)  # 1 = kept
    a, b = alpha_affine(p)
    return a * (x * keep + ALPHA_PRIME * (1.0 - keep)) + b


class AlphaDropout(RateDropout):
    drop = staticmethod(alpha_dropout)


FACTORIES = {"alpha": Factories(activation=lambda p, cfg: AlphaDropout(p))}
