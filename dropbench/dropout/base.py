"""What the scheme modules share: the factories type each one lists its modules in, the
recurrent cells, and the thin module of schemes that are a plain function of (x, p)."""

from collections.abc import Callable
from dataclasses import dataclass, fields

import torch
from torch import nn

RECURRENT_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


@dataclass(frozen=True)
class Factories:
    """How a scheme builds its modules; each scheme module gives {scheme name: Factories} as
    FACTORIES, and registry.py attaches them to the scheme's declaration (catalog.py)."""

    activation: Callable[[float, object], nn.Module] | None = None  # (p, cfg) -> module
    linear: Callable[[int, int, float, object], nn.Module] | None = None
    conv: Callable[..., nn.Module] | None = None  # (in_ch, out_ch, kernel, p, cfg, **kw)
    recurrent: Callable[..., nn.Module] | None = None  # (cell, in, hidden, p, cfg)
    embedding: Callable[..., nn.Module] | None = None  # (num_words, dim, p, cfg)

    def present(self) -> set[str]:
        return {f.name for f in fields(self) if getattr(self, f.name) is not None}

    def weight(self, kind: str):
        """The layer factory that serves a dense/conv place through its weights, if any."""
        return {"dense": self.linear, "conv": self.conv}.get(kind)


class RateDropout(nn.Module):
    """Applies the subclass's `drop(x, p)` in training; the identity in eval mode or at p = 0.
    Each call draws a fresh mask for every element (describe.py: how masks are shared)."""

    drops, mask_examples, mask_steps = "units", "per example", "per step"
    drops_at = {"attention": "attention weights"}  # where one mask element removes another thing
    # noise(shape, p, dtype, device, generator) -> the tensor `drop` multiplies an input of
    # `shape` by, drawn as `drop` draws it. A scheme that gives it can be trained in a stacked
    # sweep (dropbench/sweep/stackable.py), which draws each member's noise from the member's
    # own stream and passes it into the stacked forward; None: its noise stays inside `drop`.
    noise = None
    # stacked_noise(shape, ps, dtype, device, generators) -> (K, *shape): every member's
    # `noise` at once, row k bit for bit noise(shape, ps[k], ..., generators[k]); None: the
    # stack calls `noise` member by member.
    stacked_noise = None
    # True: dropping attention probabilities with this module is exactly what
    # scaled_dot_product_attention's dropout_p does, so the fused kernel may do it
    # (models/transformer.py)
    fuses_with_attention = False

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
FACTORIES = {"none": Factories()}  # `none` builds nothing: it serves no place
