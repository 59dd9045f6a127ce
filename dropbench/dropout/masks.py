"""Bernoulli keep-masks drawn fast on the CPU.

torch's CPU `bernoulli_` (behind F.dropout and nn.Dropout) costs about 11-14 ns per element
and runs on one core: on the MNIST MLP of docs/benchmarks.md it took 15% of a training step,
more than everything else apart from the matrix multiplies. Here the mask comes from raw
random bits instead: one 64-bit draw of torch's own CPU generator (the seeded, checkpointed
global one) yields two 31-bit uniform integers, and an element is kept when its integer is
below round(keep * 2^31). That is about 4x faster for a whole dropout forward + backward,
with the keep probability exact to 2^-31. On other devices the usual `rand < keep`.
"""

import functools
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
    return (bits.bitwise_and_(0x7FFFFFFF) < threshold_of(keep))[:n].view(shape)


def keep_factors(shape, keep: float, factor: float, dtype, device=None,
                 generator=None) -> torch.Tensor:
    """`factor` where keep_mask(shape, keep, device, generator) is True and 0 elsewhere, in
    `dtype`: the same draw and the same values as `keep_mask(...).to(dtype).mul_(factor)`.
    On the CPU in float32 it never makes the bool mask: comparing to bool and converting bools
    to floats took longer than drawing the bits (262k elements: 25 ms against 8 ms)."""
    device = torch.device(device or "cpu")
    if device.type != "cpu" or dtype != torch.float32:
        return keep_mask(shape, keep, device, generator).to(dtype).mul_(factor)
    n = math.prod(shape)
    words = torch.empty((n + 1) // 2, dtype=torch.int64).random_(generator=generator)
    factors = _factors(words.view(torch.int32)[:n], threshold_of(keep), float_bits([factor]))
    return factors.view(shape)


def keep_factor_rows(shape, keeps: list[float], factors: list[float], dtype, generators: list,
                     device=None) -> torch.Tensor:
    """(K, *shape): row k is keep_factors(shape, keeps[k], factors[k], dtype, device,
    generators[k]), bit for bit (the same draw from the same generator); only the arithmetic
    after the draws runs once for all K (a stack of models draws its members' noise so)."""
    device = torch.device(device or "cpu")
    if device.type != "cpu" or dtype != torch.float32:
        return torch.stack([keep_factors(shape, keep, factor, dtype, device, generator)
                            for keep, factor, generator in zip(keeps, factors, generators,
                                                               strict=True)])
    n = math.prod(shape)
    words = torch.empty((len(keeps), (n + 1) // 2), dtype=torch.int64)
    for row, generator in zip(words, generators, strict=True):
        row.random_(generator=generator)  # as keep_mask's one draw of (n + 1) // 2 words
    thresholds, factor_bits = row_constants(tuple(keeps), tuple(factors))
    return _factors(words.view(torch.int32), thresholds, factor_bits)[:, :n].reshape(
        len(keeps), *shape)


@functools.lru_cache(maxsize=64)
def row_constants(keeps: tuple, factors: tuple) -> tuple[torch.Tensor, torch.Tensor]:
    """(K, 1) thresholds and factor bits of keep_factor_rows, made once per stack's rates (a
    stack draws with the same ones every step). Only read, never written."""
    thresholds = torch.tensor([threshold_of(k) for k in keeps], dtype=torch.int32)
    return thresholds[:, None], float_bits(list(factors))[:, None]


def threshold_of(keep: float) -> int:
    """keep_mask's 31-bit threshold: an element is kept when its bits are below it."""
    return min(round(keep * 2**31), 2**31 - 1)


def float_bits(values: list[float]) -> torch.Tensor:
    """The float32 values' bit patterns, as int32."""
    return torch.tensor(values, dtype=torch.float32).view(torch.int32)


def _factors(bits: torch.Tensor, thresholds, factor_bits) -> torch.Tensor:
    """int32 random bits (overwritten) -> float32: the factor where the 31 low bits are below
    the threshold, else 0. Their difference is negative exactly there, and shifting its sign
    bit through gives all ones (-1) there and 0 elsewhere: a mask for the factor's bits."""
    bits.bitwise_and_(0x7FFFFFFF).sub_(thresholds).bitwise_right_shift_(31)
    return bits.bitwise_and_(factor_bits).view(torch.float32)
