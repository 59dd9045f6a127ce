"""Batched image augmentation on the device (airbench style): a whole (B, C, H, W) batch is
cropped and flipped at once with tensor indexing, never one PIL image at a time.

The random draws come from the global torch RNG of the batch's device, which the trainer
checkpoints, so a resumed run continues with the same augmentations bit-for-bit.
"""

import torch
import torch.nn.functional as F


def crop_and_flip(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, flip: torch.Tensor,
                  pad: int) -> torch.Tensor:
    """Deterministic part: x (B, C, H, W), zero-padded by `pad` on every side, then example i
    is cut at rows top[i]:top[i]+H, columns left[i]:left[i]+W (offsets in [0, 2*pad]) and
    mirrored left-right where flip[i] is true. top, left: (B,) int64; flip: (B,) bool."""
    batch, channels, height, width = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))  # zeros = the mean colour after normalisation
    rows = top[:, None] + torch.arange(height, device=x.device)  # (B, H)
    cols = left[:, None] + torch.arange(width, device=x.device)  # (B, W)
    cols = torch.where(flip[:, None], cols.flip(1), cols)  # a flip reads columns backwards
    b = torch.arange(batch, device=x.device)[:, None, None, None]
    c = torch.arange(channels, device=x.device)[None, :, None, None]
    return padded[b, c, rows[:, None, :, None], cols[:, None, None, :]]  # (B, C, H, W)


def random_crop_flip(x: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """Random crop with `pad`-pixel zero padding and a horizontal flip with probability 1/2,
    drawn independently per example. x (B, C, H, W) -> same shape and memory format."""
    n = len(x)
    top = torch.randint(0, 2 * pad + 1, (n,), device=x.device)
    left = torch.randint(0, 2 * pad + 1, (n,), device=x.device)
    flip = torch.rand(n, device=x.device) < 0.5
    out = crop_and_flip(x, top, left, flip, pad)
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        out = out.contiguous(memory_format=torch.channels_last)
    return out
