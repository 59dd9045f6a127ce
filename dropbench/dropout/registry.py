"""The scheme registry. Models ask it for modules and never name a scheme themselves.

A scheme is declared in dropbench.registry.SCHEMES (catalog.py: the built-ins; name, params
dataclass, the place kinds it serves; no torch) and built by the factories its registered
builder names, a `FACTORIES` dict {name: base.Factories} in its module:
    activation  a module applied to a layer's output: (p, cfg) -> module
    linear/conv layers that drop their own weights instead (DropConnect), replacing
                nn.Linear / nn.Conv2d where the model builds a layer at a dense/conv place
    recurrent   a one-layer LSTM/GRU that regularises its recurrent connections
    embedding   an nn.Embedding that drops words
`attach` pairs the two when the scheme is first built, and refuses a declared kind without its
factory and a factory no declared kind uses. A kind with no factory of its own (any kind but
recurrent, embedding and the weights of dense/conv layers) is served by `activation`.

Every make_* function takes the model's `Place`. A zero rate gets the plain layer (or
Identity); a nonzero rate gets the scheme's module, or a DropbenchError when the scheme cannot
serve that place: never a silent Identity. Each module handed out carries `dropout_scheme` and
`dropout_place`, so `describe.py` can state what a built model drops.
"""

from dataclasses import dataclass, field

from torch import nn

from dropbench import registry
from dropbench.dropout.base import RECURRENT_CELLS, Factories
from dropbench.dropout.catalog import Declaration, declaration
from dropbench.dropout.params import Place
from dropbench.dropout.plan import require


@dataclass(frozen=True)
class Scheme(Declaration):
    """A declared scheme with the factories that build its modules."""

    factories: Factories = field(default_factory=Factories)


WEIGHT_FACTORY = {"dense": "linear", "conv": "conv"}
OWN_FACTORY = {"recurrent": "recurrent", "embedding": "embedding"}  # any other kind: activation


def needed_factories(scheme: Declaration) -> set[str]:
    """The Factories fields that serve the kinds `scheme` declares: a module after the layer's
    output (activation) for every kind but those with a factory of their own."""
    needed = set()
    for kind in scheme.kinds:
        if scheme.through_weights and kind in WEIGHT_FACTORY:
            needed.add(WEIGHT_FACTORY[kind])
        else:
            needed.add(OWN_FACTORY.get(kind, "activation"))
    return needed


def attach(entry: registry.Entry) -> Scheme:
    """The registered scheme with the factories its builder names ({name: Factories}, or one
    Factories); refuses (DropbenchError) factories that do not match the declared kinds."""
    decl = entry.declaration
    factories = entry.load()
    if isinstance(factories, dict):
        factories = factories.get(decl.name)
    if not isinstance(factories, Factories):
        raise registry.PluginError(f"dropout scheme {decl.name} ({entry.package}): "
                                   f"{entry.builder} gives no Factories for it")
    needed, present = needed_factories(decl), factories.present()
    if needed != present:
        raise registry.PluginError(
            f"dropout scheme {decl.name} ({entry.package}) declares kinds {list(decl.kinds)}, "
            f"which need the factories {sorted(needed)}; {entry.builder} gives "
            f"{sorted(present)}")
    return Scheme(**vars(decl), factories=factories)


_built: dict[str, Scheme] = {}


def get_scheme(name: str) -> Scheme:
    decl = declaration(name)  # the one unknown-scheme message
    if name not in _built:
        _built[name] = attach(registry.SCHEMES.get(name))
    return _built[decl.name]


def __getattr__(name: str):
    if name == "SCHEMES":  # {name: Scheme} of every registered scheme, plugins' included
        return {scheme: get_scheme(scheme) for scheme in registry.SCHEMES}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
