"""A linear layer with a fresh Bernoulli weight mask for every example (per-example DropConnect).

    y_n = ((M_n * W) x_n + m_n * b) / (1 - p),   M_n ~ Bernoulli(1-p)^(out, in), m_n ~ (out,)

The plain way (`reference_per_example_linear`) multiplies an (N, out, in) float mask into W
expanded to (N, out, in) and lets autograd keep those tensors for the backward pass: several
passes of N * out * in floats through main memory (gigabytes for an MNIST MLP).
`PerExampleMaskedLinear` computes the same function in chunks of examples whose masked
weights fit in the CPU cache, and keeps only the masks (1 byte per weight and example) for the
backward pass. The masks are drawn chunk by chunk with masks.py's fast CPU sampler at 15 bits
per element (the keep probability rounded to a multiple of 2^-15, an error below 1.6e-5);
drawing them is still about a third of the cost. `scripts/bench_dropconnect.py` times both.
"""

import torch

from dropbench.dropout.masks import keep_mask

CHUNK_ELEMENTS = {"cpu": 1 << 18, "cuda": 1 << 26}  # masked weights per chunk: ~1 MiB on CPU


def chunks(n: int, out_features: int, in_features: int, device: torch.device):
    """(start, stop) of the example chunks, the same in every pass."""
    per_chunk = CHUNK_ELEMENTS.get(device.type, 1 << 26) // (out_features * in_features)
    size = max(1, per_chunk)
    return [(i, min(i + size, n)) for i in range(0, n, size)]


def draw_masks(n: int, weight: torch.Tensor, with_bias: bool, p: float):
    """Keep-masks (n, out, in) for the weights and (n, out) or None for the biases, bool,
    drawn chunk by chunk (weights at 15 bits, then biases) from torch's default generator."""
    out_features, in_features = weight.shape
    w_keep = torch.empty(n, out_features, in_features, dtype=torch.bool, device=weight.device)
    b_keep = torch.empty(n, out_features, dtype=torch.bool, device=weight.device)
    for start, stop in chunks(n, out_features, in_features, weight.device):
        w_keep[start:stop] = keep_mask(w_keep[start:stop].shape, 1 - p, weight.device, bits=15)
        if with_bias:
            b_keep[start:stop] = keep_mask(b_keep[start:stop].shape, 1 - p, weight.device)
    return w_keep, (b_keep if with_bias else None)


class PerExampleMaskedLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, w_keep, b_keep, p: float):  # x (N, in) -> (N, out)
        out = x.new_empty(len(x), weight.shape[0])
        for start, stop in chunks(len(x), *weight.shape, x.device):
            masked = w_keep[start:stop].to(weight.dtype).mul_(weight)  # (c, out, in)
            out[start:stop] = torch.bmm(masked, x[start:stop, :, None]).squeeze(-1)
            if bias is not None:
                out[start:stop] += bias * b_keep[start:stop]
        ctx.save_for_backward(x, weight, bias, w_keep, b_keep)
        ctx.p = p
        return out.mul_(1 / (1 - p))

    @staticmethod
    def backward(ctx, grad_out):  # (N, out)
        x, weight, bias, w_keep, b_keep = ctx.saved_tensors
        grad_out = grad_out / (1 - ctx.p)
        grad_x = torch.empty_like(x)
        grad_w = torch.zeros_like(weight)
        for start, stop in chunks(len(x), *weight.shape, x.device):
            g, xs = grad_out[start:stop], x[start:stop]  # (c, out), (c, in)
            keep = w_keep[start:stop].to(weight.dtype)  # (c, out, in)
            grad_x[start:stop] = torch.bmm(g[:, None, :], keep * weight).squeeze(1)
            grad_w += keep.mul_(g[:, :, None]).mul_(xs[:, None, :]).sum(0)
        grad_b = (grad_out * b_keep).sum(0) if bias is not None else None
        return grad_x, grad_w, grad_b, None, None, None


def per_example_linear(x, weight, bias, p: float) -> torch.Tensor:
    """x (N, in) -> (N, out) with one weight (and bias, when given) mask per example."""
    w_keep, b_keep = draw_masks(len(x), weight, bias is not None, p)
    return PerExampleMaskedLinear.apply(x, weight, bias, w_keep, b_keep, p)


def reference_per_example_linear(x, weight, bias, p: float) -> torch.Tensor:
    """The same function (the same masks for the same RNG state) the plain way: (N, out, in)
    masked weights, which autograd keeps. The reference for tests and the benchmark."""
    w_keep, b_keep = draw_masks(len(x), weight, bias is not None, p)
    masked = weight.expand(len(x), *weight.shape) * w_keep.to(weight.dtype)  # (N, out, in)
    out = torch.bmm(masked, x[:, :, None]).squeeze(-1)
    if bias is not None:
        out = out + bias * b_keep
    return out / (1 - p)
