"""DropConnect (Wan et al. 2013): a Bernoulli mask on the WEIGHTS of a layer instead of on its
units.

Default, as in Wan et al. (whose weight matrix includes the bias): every weight AND every bias
is kept with probability 1-p, and kept ones are scaled by 1/(1-p) in training,

    y = ((M * W) x + m * b) / (1 - p),   M ~ Bernoulli(1-p) per weight, m per bias,

so the expected weight is W and mean inference (Wan et al.'s "weight scaling") is the plain
layer: Wan et al.'s model with the stored parameters rescaled by (1 - p).
`dropout.mask_bias=false` masks the weights only and always adds the whole bias.

Masks: one mask per mini-batch (`dropout.per_example=false`, the default: one extra (out, in)
tensor, the layer stays a single matrix multiply) or a fresh mask per example
(`dropout.per_example=true`, the paper's formulation). Per example, a Linear layer runs
masked_linear.py's chunked product (no (B, out, in) tensors kept for the backward pass); a
Conv2d layer runs one grouped convolution over (B, out, in, k, k) masked kernels. Their cost is
measured by scripts/bench_dropconnect.py (docs/schemes.md).

Inference: `dropout.inference=mean` (deterministic) or `gaussian`: Wan et al.'s moment
matching, where each eval pass draws the pre-activation u ~ N(mean, var) with the moments of
the masked sum, mean = W x + b and var = p/(1-p) (W^2 x^2 + b^2) (the b^2 term only when
biases are masked), instead of sampling masks. It is stochastic, so it needs `eval.mode=mc`,
which averages the T passes.
"""

import torch
import torch.nn.functional as F
from torch import nn

from dropbench.dropout.base import Factories
from dropbench.dropout.catalog import INFERENCE
from dropbench.dropout.masked_linear import per_example_linear
from dropbench.dropout.masks import keep_factors
from dropbench.errors import DropbenchError


def drop_connect(weight: torch.Tensor, p: float) -> torch.Tensor:
    """weight * Bernoulli(1-p) mask / (1-p); pass an expanded (B, ...) weight for per-example
    masks."""
    keep = keep_factors(weight.shape, 1 - p, 1.0, weight.dtype, weight.device)  # fast on CPU
    return weight * keep / (1.0 - p)


def moment_matched_sample(mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """One draw from N(mean, var): the Gaussian with the moments of the masked sum."""
    return mean + var.clamp_min(0).sqrt() * torch.randn_like(mean)


class _DropConnectMixin:
    """Shared settings of the DropConnect layers (the layer classes stay nn.Linear/nn.Conv2d,
    so max-norm and L1 treat them like any other weight layer)."""

    drops = "weights"

    def _setup(self, p: float, per_example: bool, inference: str, mask_bias: bool) -> None:
        if inference not in INFERENCE:
            raise DropbenchError(f"dropout.inference={inference!r} is unknown; use "
                                 f"{' or '.join(INFERENCE)}")
        self.p, self.per_example, self.inference = p, per_example, inference
        self.mask_bias = mask_bias and self.bias is not None
        # eval.mode=mc leaves a layer that samples in eval mode as it is (see engine/mc.py)
        self.samples_in_eval = inference == "gaussian" and p > 0

    @property
    def mask_examples(self) -> str:
        return "per example" if self.per_example else "per batch"

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, p={self.p}, per_example={self.per_example}, "
                f"mask_bias={self.mask_bias}, inference={self.inference}")

    def train_bias(self, shape=None):
        """The bias of one training pass, expanded to `shape` (e.g. (B, out): one mask per
        example) when given, masked when biases are."""
        bias = self.bias.expand(*shape) if shape else self.bias
        return drop_connect(bias, self.p) if self.mask_bias else bias


class DropConnectLinear(_DropConnectMixin, nn.Linear):
    def __init__(self, in_features: int, out_features: int, p: float, per_example: bool = False,
                 inference: str = "mean", bias: bool = True, mask_bias: bool = True):
        super().__init__(in_features, out_features, bias=bias)
        self._setup(p, per_example, inference, mask_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., in) -> (..., out)
        if self.p == 0:
            return super().forward(x)
        if not self.training:
            if self.inference == "mean":
                return super().forward(x)
            var = F.linear(x * x, self.weight * self.weight)  # (..., out)
            if self.mask_bias:
                var = var + self.bias * self.bias
            return moment_matched_sample(super().forward(x), var * (self.p / (1 - self.p)))
        if not self.per_example:
            return F.linear(x, drop_connect(self.weight, self.p), self.train_bias())
        flat = x.reshape(-1, x.shape[-1])  # (N, in): every leading index is an example
        out = per_example_linear(flat, self.weight, self.bias if self.mask_bias else None,
                                 self.p)  # (N, out)
        if self.bias is not None and not self.mask_bias:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features)


class DropConnectConv2d(_DropConnectMixin, nn.Conv2d):
    def __init__(self, in_channels: int, out_channels: int, kernel_size, p: float,
                 per_example: bool = False, inference: str = "mean", mask_bias: bool = True,
                 **kw):
        super().__init__(in_channels, out_channels, kernel_size, **kw)
        if per_example and self.padding_mode != "zeros":
            raise DropbenchError("dropout.per_example=true needs zero padding in conv layers; "
                                 "set dropout.per_example=false")
        self._setup(p, per_example, inference, mask_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, out, H', W')
        if self.p == 0:
            return super().forward(x)
        if not self.training:
            if self.inference == "mean":
                return super().forward(x)
            var = self._conv_forward(x * x, self.weight * self.weight, None)
            if self.mask_bias:
                var = var + (self.bias * self.bias)[:, None, None]  # (out, 1, 1) over the map
            return moment_matched_sample(super().forward(x), var * (self.p / (1 - self.p)))
        if not self.per_example:
            return self._conv_forward(x, drop_connect(self.weight, self.p), self.train_bias())
        # One grouped convolution: example b's channels only meet example b's masked kernel.
        b = len(x)
        w = drop_connect(self.weight.expand(b, *self.weight.shape), self.p)  # (B, out, in/g, k, k)
        bias = None
        if self.bias is not None:  # (B * out,): one bias per group
            bias = self.train_bias((b, self.out_channels)).reshape(-1)
        out = F.conv2d(x.reshape(1, -1, *x.shape[2:]), w.reshape(-1, *w.shape[2:]), bias,
                       self.stride, self.padding, self.dilation, b * self.groups)
        return out.reshape(b, self.out_channels, *out.shape[2:])


def _linear(in_features, out_features, p, cfg):
    return DropConnectLinear(in_features, out_features, p, cfg.per_example, cfg.inference,
                             mask_bias=cfg.mask_bias)


def _conv(in_channels, out_channels, kernel_size, p, cfg, **kw):
    return DropConnectConv2d(in_channels, out_channels, kernel_size, p, cfg.per_example,
                             cfg.inference, cfg.mask_bias, **kw)


FACTORIES = {"dropconnect": Factories(linear=_linear, conv=_conv)}
