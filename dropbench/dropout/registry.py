"""The scheme registry. Models ask it for modules and never name a scheme themselves.

A scheme registers an `activation` factory (a module applied to a layer's output) and, if it
acts on weights instead (DropConnect, weight-drop), `linear` / `conv` factories that replace
nn.Linear / nn.Conv2d; recurrent schemes may supply `recurrent` (a one-layer LSTM/GRU that
regularises its recurrent connections) and `embedding` (an nn.Embedding that drops words).
Adding a scheme = one module file that calls `register` + one `conf/dropout/<name>.yaml`.
"""

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from dropbench import DropbenchError


@dataclass
class Scheme:
    name: str
    description: str
    places: tuple[str, ...]  # where it applies: "dense", "conv", "recurrent"
    activation: Callable[[float, object], nn.Module] | None = None  # (p, cfg) -> module
    linear: Callable[[int, int, float, object], nn.Module] | None = None
    conv: Callable[..., nn.Module] | None = None  # (in_ch, out_ch, kernel, p, cfg, **kw)
    recurrent: Callable[..., nn.Module] | None = None  # (cell, in, hidden, p, cfg)
    embedding: Callable[..., nn.Module] | None = None  # (num_words, dim, p, cfg)


SCHEMES: dict[str, Scheme] = {}


def register(name: str, description: str, places=("dense",), activation=None, linear=None,
             conv=None, recurrent=None, embedding=None):
    SCHEMES[name] = Scheme(name, description, tuple(places), activation, linear, conv,
                           recurrent, embedding)


def get_scheme(name: str) -> Scheme:
    if name not in SCHEMES:
        raise DropbenchError(
            f"unknown dropout scheme {name!r}; choose one of {', '.join(sorted(SCHEMES))}"
        )
    return SCHEMES[name]


def make_dropout(cfg, p: float, place: str = "dense") -> nn.Module:
    """The module that goes after a layer's output at `place`; Identity when p == 0."""
    scheme = get_scheme(cfg.name)
    if p == 0 or scheme.activation is None:
        return nn.Identity()
    if place not in scheme.places:
        raise DropbenchError(
            f"dropout={scheme.name} does not apply to {place} layers (it supports "
            f"{', '.join(scheme.places)}); pick another scheme or set its rate there to 0"
        )
    return scheme.activation(p, cfg)


def make_linear(cfg, in_features: int, out_features: int, p: float) -> nn.Module:
    """A fully connected layer; schemes that drop weights supply their own."""
    scheme = get_scheme(cfg.name)
    if p == 0 or scheme.linear is None:
        return nn.Linear(in_features, out_features)
    return scheme.linear(in_features, out_features, p, cfg)


def make_conv(cfg, in_channels: int, out_channels: int, kernel_size: int, p: float, **kw):
    """A 2-d convolution (kw as for nn.Conv2d); schemes that drop weights supply their own."""
    scheme = get_scheme(cfg.name)
    if p == 0 or scheme.conv is None:
        return nn.Conv2d(in_channels, out_channels, kernel_size, **kw)
    return scheme.conv(in_channels, out_channels, kernel_size, p, cfg, **kw)


RECURRENT_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


def make_recurrent(cfg, cell: str, input_size: int, hidden_size: int, p: float) -> nn.Module:
    """One recurrent layer (`cell` is lstm or gru) called as layer(x, state) -> (out, state) on
    (T, B, input_size) inputs; p is the rate on its recurrent connections."""
    scheme = get_scheme(cfg.name)
    if p == 0 or scheme.activation is None:  # `none` drops nothing anywhere
        return RECURRENT_CELLS[cell](input_size, hidden_size)
    if scheme.recurrent is None:
        raise DropbenchError(
            f"dropout={scheme.name} has no recurrent-connection dropout; set "
            f"dropout.p_recurrent=0 or use variational, locked, weight_drop or gate"
        )
    return scheme.recurrent(cell, input_size, hidden_size, p, cfg)


def make_embedding(cfg, num_words: int, dim: int, p: float) -> nn.Module:
    """A word embedding (an nn.Embedding); p drops whole words (embedding dropout)."""
    scheme = get_scheme(cfg.name)
    if p == 0 or scheme.activation is None:
        return nn.Embedding(num_words, dim)
    if scheme.embedding is None:
        raise DropbenchError(
            f"dropout={scheme.name} has no embedding dropout; set dropout.p_embed=0 or use "
            f"variational, locked, weight_drop or gate"
        )
    return scheme.embedding(num_words, dim, p, cfg)
