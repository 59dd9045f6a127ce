"""DropConnect (Wan et al. 2013): a Bernoulli mask on the WEIGHTS of a layer instead of on its
units. Each weight is dropped with probability p.

Scaling: like `standard`, kept weights are scaled by 1/(1-p) in training, so the expected
weight is W and mean inference (Wan et al.'s "weight scaling" approximation) is the plain layer.
This is Wan et al.'s model with the stored weights rescaled by (1 - p); biases are not masked.

Masks: one mask per mini-batch (`dropout.per_example=false`, the default: one extra (out, in)
tensor, the layer stays a single matrix multiply) or a fresh mask per example
(`dropout.per_example=true`, the paper's formulation: a (B, out, in) mask and a batched
product, so memory and time grow by a factor of about B; see scripts/bench_dropconnect.py).

Inference: `dropout.inference=mean` (deterministic) or `gaussian`: Wan et al.'s moment
matching, where each eval pass draws the pre-activation u ~ N(W x, p/(1-p) W^2 x^2) instead of
sampling masks. It is stochastic, so it needs `eval.mode=mc`, which averages the T passes.
"""

import torch
import torch.nn.functional as F
from torch import nn

from dropbench import DropbenchError
from dropbench.dropout.masks import keep_mask
from dropbench.dropout.registry import register

INFERENCE = ("mean", "gaussian")


def drop_connect(weight: torch.Tensor, p: float) -> torch.Tensor:
    """weight * Bernoulli(1-p) mask / (1-p); pass an expanded (B, ...) weight for per-example
    masks."""
    keep = keep_mask(weight.shape, 1 - p, weight.device).to(weight.dtype)  # fast on the CPU
    return weight * keep / (1.0 - p)


def moment_matched_sample(mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """One draw from N(mean, var): the Gaussian with the moments of the masked sum."""
    return mean + var.clamp_min(0).sqrt() * torch.randn_like(mean)


class _DropConnectMixin:
    """Shared settings of the DropConnect layers (the layer classes stay nn.Linear/nn.Conv2d,
    so max-norm and L1 treat them like any other weight layer)."""

    def _setup(self, p: float, per_example: bool, inference: str) -> None:
        if inference not in INFERENCE:
            raise DropbenchError(f"dropout.inference={inference!r} is unknown; use "
                                 f"{' or '.join(INFERENCE)}")
        self.p, self.per_example, self.inference = p, per_example, inference
        # eval.mode=mc leaves a layer that samples in eval mode as it is (see engine/mc.py)
        self.samples_in_eval = inference == "gaussian" and p > 0

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, p={self.p}, per_example={self.per_example}, "
                f"inference={self.inference}")


class DropConnectLinear(_DropConnectMixin, nn.Linear):
    def __init__(self, in_features: int, out_features: int, p: float, per_example: bool = False,
                 inference: str = "mean", bias: bool = True):
        super().__init__(in_features, out_features, bias=bias)
        self._setup(p, per_example, inference)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., in) -> (..., out)
        if self.p == 0:
            return super().forward(x)
        if not self.training:
            if self.inference == "mean":
                return super().forward(x)
            var = F.linear(x * x, self.weight * self.weight) * (self.p / (1 - self.p))
            return moment_matched_sample(super().forward(x), var)
        if not self.per_example:
            return F.linear(x, drop_connect(self.weight, self.p), self.bias)
        flat = x.reshape(-1, x.shape[-1])  # (N, in): every leading index is an example
        w = drop_connect(self.weight.expand(len(flat), *self.weight.shape), self.p)  # (N, out, in)
        out = torch.bmm(w, flat.unsqueeze(-1)).squeeze(-1)  # (N, out)
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features)


class DropConnectConv2d(_DropConnectMixin, nn.Conv2d):
    def __init__(self, in_channels: int, out_channels: int, kernel_size, p: float,
                 per_example: bool = False, inference: str = "mean", **kw):
        super().__init__(in_channels, out_channels, kernel_size, **kw)
        if per_example and self.padding_mode != "zeros":
            raise DropbenchError("dropout.per_example=true needs zero padding in conv layers; "
                                 "set dropout.per_example=false")
        self._setup(p, per_example, inference)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, out, H', W')
        if self.p == 0:
            return super().forward(x)
        if not self.training:
            if self.inference == "mean":
                return super().forward(x)
            var = self._conv_forward(x * x, self.weight * self.weight, None)
            return moment_matched_sample(super().forward(x), var * (self.p / (1 - self.p)))
        if not self.per_example:
            return self._conv_forward(x, drop_connect(self.weight, self.p), self.bias)
        # One grouped convolution: example b's channels only meet example b's masked kernel.
        b = len(x)
        w = drop_connect(self.weight.expand(b, *self.weight.shape), self.p)  # (B, out, in/g, k, k)
        bias = self.bias.repeat(b) if self.bias is not None else None
        out = F.conv2d(x.reshape(1, -1, *x.shape[2:]), w.reshape(-1, *w.shape[2:]), bias,
                       self.stride, self.padding, self.dilation, b * self.groups)
        return out.reshape(b, self.out_channels, *out.shape[2:])


def _linear(in_features, out_features, p, cfg):
    return DropConnectLinear(in_features, out_features, p, cfg.per_example, cfg.inference)


def _conv(in_channels, out_channels, kernel_size, p, cfg, **kw):
    return DropConnectConv2d(in_channels, out_channels, kernel_size, p, cfg.per_example,
                             cfg.inference, **kw)


register(
    "dropconnect",
    "drop weights, not units: Bernoulli mask on Linear/Conv2d weights (per batch or example)",
    places=("dense", "conv"),
    linear=_linear,
    conv=_conv,
)

