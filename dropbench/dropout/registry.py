"""The scheme registry. Models ask it for modules and never name a scheme themselves.

A scheme registers an `activation` factory (a module applied to a layer's output) and, if it
acts on weights instead (DropConnect, weight-drop), a `linear` factory that replaces nn.Linear.
Adding a scheme = one module file that calls `register` + one `conf/dropout/<name>.yaml`.
"""

from dataclasses import dataclass
from typing import Callable, Optional

from torch import nn

from dropbench import DropbenchError


@dataclass
class Scheme:
    name: str
    description: str
    places: tuple[str, ...]  # where it applies: "dense", "conv", "recurrent"
    activation: Optional[Callable[[float, object], nn.Module]] = None  # (p, cfg) -> module
    linear: Optional[Callable[[int, int, float, object], nn.Module]] = None


SCHEMES: dict[str, Scheme] = {}


def register(name: str, description: str, places=("dense",), activation=None, linear=None):
    SCHEMES[name] = Scheme(name, description, tuple(places), activation, linear)


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
