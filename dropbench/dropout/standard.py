"""Standard (inverted) Bernoulli dropout, Srivastava et al. 2014 as implemented in practice:
units are zeroed with probability p during training and the survivors scaled by 1/(1-p), so
evaluation needs no rescaling and is the identity."""

import torch
import torch.nn.functional as F

from dropbench.dropout.base import Factories, RateDropout
from dropbench.dropout.masks import keep_mask


def bernoulli_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    if not training or p == 0:
        return x
    if x.device.type != "cpu":
        return F.dropout(x, p, training)  # one fused kernel on CUDA
    # On the CPU torch's bernoulli_ dominates the cost of F.dropout; see masks.py.
    return x * keep_mask(x.shape, 1 - p).to(x.dtype).mul_(1 / (1 - p))


class BernoulliDropout(RateDropout):
    drop = staticmethod(bernoulli_dropout)
    fuses_with_attention = True  # SDPA's dropout_p: inverted Bernoulli on the probabilities


FACTORIES = {"standard": Factories(activation=lambda p, cfg: BernoulliDropout(p))}
