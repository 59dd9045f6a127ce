"""Standard (inverted) Bernoulli dropout, Srivastava et al. 2014 as implemented in practice:
units are zeroed with probability p during training and the survivors scaled by 1/(1-p), so
evaluation needs no rescaling and is the identity."""

import torch
import torch.nn.functional as F

from dropbench.dropout.base import Factories, RateDropout
from dropbench.dropout.masks import keep_factor_rows, keep_factors


def bernoulli_noise(shape, p: float, dtype, device, generator=None) -> torch.Tensor:
    """The factor x is multiplied by: 0 with probability p, else 1/(1-p), one per element."""
    return keep_factors(shape, 1 - p, 1 / (1 - p), dtype, device, generator)


def stacked_bernoulli_noise(shape, ps: list[float], dtype, device,
                            generators: list) -> torch.Tensor:
    """(K, *shape): row k is bernoulli_noise(shape, ps[k], dtype, device, generators[k])."""
    return keep_factor_rows(shape, [1 - p for p in ps], [1 / (1 - p) for p in ps], dtype,
                            generators, device)


def bernoulli_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    if not training or p == 0:
        return x
    if x.device.type != "cpu":
        return F.dropout(x, p, training)  # one fused kernel on CUDA
    # On the CPU torch's bernoulli_ dominates the cost of F.dropout; see masks.py.
    return x * bernoulli_noise(x.shape, p, x.dtype, x.device)


class BernoulliDropout(RateDropout):
    drop = staticmethod(bernoulli_dropout)
    noise = staticmethod(bernoulli_noise)
    stacked_noise = staticmethod(stacked_bernoulli_noise)
    fuses_with_attention = True  # SDPA's dropout_p: inverted Bernoulli on the probabilities


FACTORIES = {"standard": Factories(activation=lambda p, cfg: BernoulliDropout(p))}
