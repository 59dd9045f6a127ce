"""The scheme registry. Models ask it for modules and never name a scheme themselves.

A scheme is declared in catalog.py (name, params dataclass, the place kinds it serves; no
torch) and built by the factories its module lists in `FACTORIES` (base.Factories):
    activation  a module applied to a layer's output: (p, cfg) -> module
    linear/conv layers that drop their own weights instead (DropConnect), replacing
                nn.Linear / nn.Conv2d where the model builds a layer at a dense/conv place
    recurrent   a one-layer LSTM/GRU that regularises its recurrent connections
    embedding   an nn.Embedding that drops words
`attach` pairs the two once, at import, and refuses (TypeError) a declared kind without its
factory, a factory no declared kind uses, and factories for a scheme catalog.py lacks.

Every make_* function takes the model's `Place`. A zero rate gets the plain layer (or
Identity); a nonzero rate gets the scheme's module, or a DropbenchError when the scheme cannot
serve that place: never a silent Identity. Each module handed out carries `dropout_scheme` and
`dropout_place`, so `describe.py` can state what a built model drops.
"""

from dataclasses import dataclass, field

from torch import nn

from dropbench.dropout import (
    alpha,
    classic,
    concrete,
    dropblock,
    dropconnect,
    gate,
    gaussian,
    locked,
    spatial,
    standard,
    variational,
    weight_drop,
)
from dropbench.dropout.base import RECURRENT_CELLS, Factories
from dropbench.dropout.catalog import DECLARED, Declaration, declaration
from dropbench.dropout.params import Place
from dropbench.dropout.plan import require

SCHEME_MODULES = (alpha, classic, concrete, dropblock, dropconnect, gate, gaussian, locked,
                  spatial, standard, variational, weight_drop)


@dataclass(frozen=True)
class Scheme(Declaration):
    """A declared scheme with the factories that build its modules."""

    factories: Factories = field(default_factory=Factories)


def needed_factories(scheme: Declaration) -> set[str]:
    """The Factories fields that serve the kinds `scheme` declares."""
    unit = "activation"
    by_kind = {"dense": "linear" if scheme.through_weights else unit,
               "conv": "conv" if scheme.through_weights else unit,
               "sequence": unit, "recurrent": "recurrent", "embedding": "embedding"}
    return {by_kind[kind] for kind in scheme.kinds}


def attach(declared: dict[str, Declaration], modules) -> dict[str, Scheme]:
    """{name: Scheme}: each declaration with the factories the scheme modules give for it."""
    given: dict[str, Factories] = {}
    for module in modules:
        for name, factories in module.FACTORIES.items():
            if name not in declared or name in given:
                raise TypeError(f"{module.__name__} gives factories for scheme {name!r}, which "
                                f"catalog.py does not declare or another module serves")
            given[name] = factories
    schemes = {}
    for name, decl in declared.items():
        factories = given.get(name, Factories())
        needed, present = needed_factories(decl), factories.present()
        if needed != present:
            raise TypeError(f"scheme {name} declares kinds {list(decl.kinds)}, which need the "
                            f"factories {sorted(needed)}; its module gives {sorted(present)}")
        schemes[name] = Scheme(**vars(decl), factories=factories)
    return schemes


SCHEMES: dict[str, Scheme] = attach(DECLARED, SCHEME_MODULES)


def get_scheme(name: str) -> Scheme:
    return SCHEMES[declaration(name).name]  # declaration(): the one unknown-scheme message


def _stamp(module: nn.Module, scheme: Scheme, place: Place) -> nn.Module:
    module.dropout_scheme, module.dropout_place = scheme.name, place
    return module


def make_dropout(cfg, p: float, place: Place) -> nn.Module:
    """The module that goes after a layer's output at `place`. Identity when p == 0, or when
    the scheme drops the weights of the layer the model builds at this place instead."""
    if p == 0:
        return nn.Identity()
    scheme = get_scheme(cfg.name)
    require(scheme, place, p)
    if scheme.factories.weight(place.kind) is not None:
        return nn.Identity()  # served by make_linear / make_conv at the same place
    return _stamp(scheme.factories.activation(p, cfg), scheme, place)


def make_linear(cfg, in_features: int, out_features: int, p: float, place: Place) -> nn.Module:
    """A fully connected layer at `place`; schemes that drop weights supply their own."""
    scheme = get_scheme(cfg.name)
    if p == 0 or scheme.factories.linear is None:
        return nn.Linear(in_features, out_features)
    require(scheme, place, p)
    return _stamp(scheme.factories.linear(in_features, out_features, p, cfg), scheme, place)


def make_conv(cfg, in_channels: int, out_channels: int, kernel_size: int, p: float,
              place: Place, **kw):
    """A 2-d convolution at `place` (kw as for nn.Conv2d); weight-dropping schemes supply
    their own."""
    scheme = get_scheme(cfg.name)
    if p == 0 or scheme.factories.conv is None:
        return nn.Conv2d(in_channels, out_channels, kernel_size, **kw)
    require(scheme, place, p)
    layer = scheme.factories.conv(in_channels, out_channels, kernel_size, p, cfg, **kw)
    return _stamp(layer, scheme, place)


def make_recurrent(cfg, cell: str, input_size: int, hidden_size: int, p: float,
                   place: Place) -> nn.Module:
    """One recurrent layer (`cell` is lstm or gru) called as layer(x, state) -> (out, state) on
    (T, B, input_size) inputs; p is the rate on its recurrent connections."""
    if p == 0:
        return RECURRENT_CELLS[cell](input_size, hidden_size)
    scheme = get_scheme(cfg.name)
    require(scheme, place, p)
    layer = scheme.factories.recurrent(cell, input_size, hidden_size, p, cfg)
    return _stamp(layer, scheme, place)


def make_embedding(cfg, num_words: int, dim: int, p: float, place: Place) -> nn.Module:
    """A word embedding (an nn.Embedding); p drops whole words (embedding dropout)."""
    if p == 0:
        return nn.Embedding(num_words, dim)
    scheme = get_scheme(cfg.name)
    require(scheme, place, p)
    return _stamp(scheme.factories.embedding(num_words, dim, p, cfg), scheme, place)
