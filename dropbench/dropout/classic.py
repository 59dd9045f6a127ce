"""Classic Bernoulli dropout, the formulation of Hinton et al. 2012 / Srivastava et al. 2014:
units are zeroed with probability p during training and NOT rescaled; at test time every
activation is multiplied by the keep probability (1 - p), the paper's weight scaling.

The expected training output equals the test output, as with `standard`; the two differ only
in where the 1/(1-p) factor lives (here: none in training, (1-p) at test)."""

import torch

from dropbench.dropout.base import Factories, RateDropout
from dropbench.dropout.masks import keep_factors  # fast on the CPU


def classic_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    return x * keep_factors(x.shape, 1.0 - p, 1.0, x.dtype, x.device)  # 1: kept, prob. 1-p


class ClassicDropout(RateDropout):
    drop = staticmethod(classic_dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training and self.p != 0:
            return x * (1.0 - self.p)  # weight scaling: the mean of the training output
        return super().forward(x)


FACTORIES = {"classic": Factories(activation=lambda p, cfg: ClassicDropout(p))}
