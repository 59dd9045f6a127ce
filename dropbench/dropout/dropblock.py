"""DropBlock (Ghiasi, Lin & Le 2018, "DropBlock: a regularization method for convolutional
networks"): drop contiguous block_size x block_size squares of each feature map.

Dropping single activations (or even whole channels) of a conv layer leaves the neighbouring,
correlated activations to carry the same information; dropping a square region removes it.
Following the paper's Algorithm 1:
  - block seeds are drawn with probability gamma, only where a whole block fits;
  - gamma = p / b^2 * (H * W) / ((H - b + 1)(W - b + 1)), so that the expected number of
    dropped units is p * H * W when blocks do not overlap (overlaps make it slightly less);
  - the survivors are scaled by count(mask) / count_ones(mask), over the whole batch;
  - p is raised linearly from 0 during training (the paper's schedule, here per epoch:
    p * min(1, (epoch + 1) / ramp_epochs) in 0-based epoch `epoch`).
The block side is clipped to the feature map. On a (B, D) fully connected input every unit
is a 1x1 map, so DropBlock there is Bernoulli dropout with a batch-wise rescaling.
"""

import torch
import torch.nn.functional as F
from torch import nn

from dropbench.dropout.base import Factories


def dropblock_gamma(p: float, block: int, height: int, width: int) -> float:
    """Seed probability that makes the expected dropped fraction p (ignoring overlaps)."""
    valid_seeds = (height - block + 1) * (width - block + 1)
    return p * height * width / (block * block * valid_seeds)


def block_mask(shape, p: float, block_size: int, device, dtype) -> torch.Tensor:
    """A 0/1 keep-mask of `shape` (B, C, H, W) with dropped b x b squares, b <= min(H, W)."""
    batch, channels, height, width = shape
    b = min(block_size, height, width)
    gamma = dropblock_gamma(p, b, height, width)
    # A seed marks the top-left corner of a dropped block: (B, C, H-b+1, W-b+1).
    seeds = torch.rand(batch, channels, height - b + 1, width - b + 1, device=device) < gamma
    # Grow each seed into a b x b square: pad by b-1 on every side, then a b x b max-pool
    # with stride 1 brings the map back to (B, C, H, W).
    dropped = F.max_pool2d(F.pad(seeds.to(dtype), (b - 1,) * 4), kernel_size=b, stride=1)
    return 1 - dropped


def drop_block(x: torch.Tensor, p: float, block_size: int, training: bool = True):
    """x (B, C, H, W) or (B, D) -> same shape, with blocks zeroed and survivors rescaled."""
    if not training or p == 0:
        return x
    maps = x[:, :, None, None] if x.dim() == 2 else x  # (B, C, H, W)
    keep = block_mask(maps.shape, p, block_size, x.device, x.dtype)
    # Rescale by total / kept over the whole batch, as the paper normalises.
    scale = keep.numel() / keep.sum(dtype=torch.float32).clamp(min=1.0)
    out = maps * keep * scale
    return out.flatten(1) if x.dim() == 2 else out


class DropBlock(nn.Module):
    drops = "blocks"
    drops_at = {"dense": "units (1x1 maps)"}  # a fully connected input has no square to drop
    couples_examples = True  # the survivors' scale counts kept units over the whole batch

    def __init__(self, p: float, block_size: int, ramp_epochs: int = 0):
        super().__init__()
        self.p, self.block_size, self.ramp_epochs = p, block_size, ramp_epochs
        self.rate = self.ramped_rate(0)  # the rate in use now; set_epoch moves it

    def ramped_rate(self, epoch: int) -> float:
        if self.ramp_epochs <= 0:
            return self.p
        return self.p * min(1.0, (epoch + 1) / self.ramp_epochs)

    def set_epoch(self, epoch: int, epochs: int) -> None:  # called by the trainer (hooks.py)
        self.rate = self.ramped_rate(epoch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0:
            return x
        return drop_block(x, self.rate, self.block_size)

    def extra_repr(self) -> str:
        return f"p={self.p}, block_size={self.block_size}, ramp_epochs={self.ramp_epochs}"


FACTORIES = {"dropblock": Factories(
    activation=lambda p, cfg: DropBlock(p, cfg.block_size, cfg.ramp_epochs))}
