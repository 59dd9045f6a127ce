"""Spatial dropout (Tompson et al. 2015, "Efficient object localization using convolutional
networks"): drop whole feature maps instead of single activations.

Neighbouring pixels of a feature map are strongly correlated, so zeroing single activations
barely removes information; zeroing a whole channel does. On a (B, D) input from a fully
connected layer each unit is its own channel, so this is standard dropout there.
"""

import torch

from dropbench.dropout.base import Factories, RateDropout
from dropbench.dropout.masks import keep_mask


def spatial_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Zero each (example, channel) slice of x (B, C, ...) with probability p, scale the
    rest by 1/(1-p)."""
    if not training or p == 0:
        return x
    mask_shape = x.shape[:2] + (1,) * (x.dim() - 2)  # (B, C, 1, 1): one draw per channel
    keep = keep_mask(mask_shape, 1 - p, x.device).to(x.dtype)  # masks.py: fast on the CPU
    return x * keep.div_(1 - p)


class SpatialDropout(RateDropout):
    drop = staticmethod(spatial_dropout)
    drops = "channels"


FACTORIES = {"spatial": Factories(activation=lambda p, cfg: SpatialDropout(p))}
