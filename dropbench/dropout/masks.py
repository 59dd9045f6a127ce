"""Bernoulli keep-masks drawn fast on the CPU.

torch's CPU `bernoulli_` (behind F.dropout and nn.Dropout) costs about 11-14 ns per element
and runs on one core: on the MNIST MLP of docs/benchmarks.md it took 15% of a training step,
more than everything else apart from the matrix multiplies. Here the mask comes from raw
random bits instead: one 64-bit draw of torch's own CPU generator (the seeded, checkpointed
global one) yields two 31-bit uniform integers, and an element is kept when its integer is
below round(keep * 2^31). That is about 4x faster for a whole dropout forward + backward,
with the keep probability exact to 2^-31. On other devices the usual `rand < keep`.
"""

import math

import torch


def keep_mask(shape, keep: float, device=None, generator=None, bits: int = 31) -> torch.Tensor:
    """Bool tensor of `shape`, each element True independently with probability `keep`.
    generator: a torch.Generator on `device` to draw from instead of torch's global one.

    On the CPU `bits=15` draws 15 random bits per element instead of 31, about twice as fast,
    with `keep` rounded to a multiple of 2^-15 (an error below 1.6e-5)."""
    device = torch.device(device or "cpu")
    if device.type != "cpu":
        return torch.rand(shape, device=device, generator=generator) < keep
    n = math.prod(shape)
    if bits == 15:  # the same trick on four int16 quarters of each int64 draw
        words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(generator=generator)
        threshold = min(round(keep * 2**15), 2**15 - 1)
        return (words.view(torch.int16).bitwise_and_(0x7FFF) < threshold)[:n].view(shape)
    # int64 random_() draws uniformly from [0, 2^63): as two int32 halves, the low one holds
    # 32 random bits and the high one 31 (its sign bit is 0). Clearing every half's sign bit
    # leaves 31 uniform bits per element, on either byte order.
    bits = torch.empty((n + 1) // 2, dtype=torch.int64).random_(generator=generator)
    bits = bits.view(torch.int32)
    threshold = min(round(keep * 2**31), 2**31 - 1)
    return (bits.bitwise_and_(0x7FFFFFFF) < threshold)[:n].view(shape)


def keep_masks(shape, keeps: list[float], generators: list, device=None) -> torch.Tensor:
    """(K, *shape) bool: row k is keep_mask(shape, keeps[k], device, generators[k]), drawn
    from the same generator with the same call, so bit for bit the same; only the
    comparisons run once for all K (a stack of models draws each member's masks this way)."""
    device = torch.device(device or "cpu")
    if device.type != "cpu":
        return torch.stack([keep_mask(shape, keep, device, generator)
                            for keep, generator in zip(keeps, generators, strict=True)])
    n = math.prod(shape)
    words = torch.empty((len(keeps), (n + 1) // 2), dtype=torch.int64)
    for row, generator in zip(words, generators, strict=True):
        row.random_(generator=generator)  # as keep_mask's one draw of (n + 1) // 2 words
    thresholds = torch.tensor([min(round(k * 2**31), 2**31 - 1) for k in keeps],
                              dtype=torch.int32)
    bits = words.view(torch.int32).bitwise_and_(0x7FFFFFFF)
    return (bits < thresholds[:, None])[:, :n].reshape(len(keeps), *shape)
