"""Spatial dropout (Tompson et al. 2015, "Efficient object localization using convolutional
networks"): drop whole feature maps instead of single activations.

Neighbouring pixels of a feature map are strongly correlated, so zeroing single activations
barely removes information; zeroing a whole channel does. On a (B, D) input from a fully
connected layer each unit is its own channel, so this is standard dropout there.
"""

import torch

from dropbench.dropout.base import Factories, RateDropout
from dropbench.dropout.masks import keep_factors


def spatial_noise(shape, p: float, dtype, device, generator=None) -> torch.Tensor:
    """The factor an input of `shape` (B, C, ...) is multiplied by: (B, C, 1, ...), 0 with
    probability p, else 1/(1-p)."""
    mask_shape = tuple(shape[:2]) + (1,) * (len(shape) - 2)  # one draw per channel
    return keep_factors(mask_shape, 1 - p, 1 / (1 - p), dtype, device, generator)


def spatial_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Zero each (example, channel) slice of x (B, C, ...) with probability p, scale the
    rest by 1/(1-p)."""
    if not training or p == 0:
        return x
    return x * spatial_noise(x.shape, p, x.dtype, x.device)


class SpatialDropout(RateDropout):
    drop = staticmethod(spatial_dropout)
    noise = staticmethod(spatial_noise)
    drops = "channels"
    drops_at = {"dense": "units (1x1 channels)"}  # a fully connected input's unit is a channel


FACTORIES = {"spatial": Factories(activation=lambda p, cfg: SpatialDropout(p))}
