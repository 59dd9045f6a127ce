"""The thin module shared by schemes that are a plain function of (x, p)."""

import torch
from torch import nn


class RateDropout(nn.Module):
    """Applies the subclass's `drop(x, p)` in training; the identity in eval mode or at p = 0.
    Each call draws a fresh mask for every element (describe.py: how masks are shared)."""

    drops, mask_examples, mask_steps = "units", "per example", "per step"

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    @staticmethod
    def drop(x: torch.Tensor, p: float) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        return self.drop(x, self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"
