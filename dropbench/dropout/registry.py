"""The scheme registry. Models ask it for modules and never name a scheme themselves.

A scheme registers its params dataclass (dropout/params.py), the place kinds it serves and the
factories that serve them:
    activation  a module applied to a layer's output: (p, cfg) -> module
    linear/conv layers that drop their own weights instead (DropConnect), replacing
                nn.Linear / nn.Conv2d where the model builds a layer at a dense/conv place
    recurrent   a one-layer LSTM/GRU that regularises its recurrent connections
    embedding   an nn.Embedding that drops words
Adding a scheme = one module file that calls `register` + one `conf/dropout/<name>.yaml`.

Every make_* function takes the model's `Place`. A zero rate gets the plain layer (or
Identity); a nonzero rate gets the scheme's module, or a DropbenchError when the scheme cannot
serve that place: never a silent Identity. Each module handed out carries `dropout_scheme` and
`dropout_place`, so `describe.py` can state what a built model drops.
"""

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from dropbench import DropbenchError
from dropbench.dropout.params import KINDS, DropoutParams, Place, declared


@dataclass
class Scheme:
    name: str
    description: str
    params: type  # the dataclass of its config (a DropoutParams subclass)
    kinds: tuple[str, ...]  # the place kinds it serves (params.KINDS)
    activation: Callable[[float, object], nn.Module] | None = None  # (p, cfg) -> module
    linear: Callable[[int, int, float, object], nn.Module] | None = None
    conv: Callable[..., nn.Module] | None = None  # (in_ch, out_ch, kernel, p, cfg, **kw)
    recurrent: Callable[..., nn.Module] | None = None  # (cell, in, hidden, p, cfg)
    embedding: Callable[..., nn.Module] | None = None  # (num_words, dim, p, cfg)

    def weight_factory(self, kind: str):
        """The layer factory that serves a dense/conv place through its weights, if any."""
        return {"dense": self.linear, "conv": self.conv}.get(kind)

    def serves(self, place: Place) -> bool:
        if place.kind not in self.kinds:
            return False
        if self.weight_factory(place.kind) is not None:
            return place.layer  # weights to drop only where the model builds a layer
        return True

    @property
    def keys(self) -> list[str]:
        return [f.name for f in declared(self.params)]


SCHEMES: dict[str, Scheme] = {}


def register(name: str, description: str, params: type, kinds=(), activation=None, linear=None,
             conv=None, recurrent=None, embedding=None) -> None:
    scheme = Scheme(name, description, params, tuple(kinds), activation, linear, conv,
                    recurrent, embedding)
    backed = {"dense": activation or linear, "conv": activation or conv,
              "sequence": activation, "recurrent": recurrent, "embedding": embedding}
    unknown = [k for k in scheme.kinds if k not in KINDS or backed[k] is None]
    if unknown or not issubclass(params, DropoutParams):
        raise TypeError(f"scheme {name}: kinds {unknown} have no factory, or params is not a "
                        f"DropoutParams dataclass")
    SCHEMES[name] = scheme


def get_scheme(name: str) -> Scheme:
    if name not in SCHEMES:
        raise DropbenchError(
            f"unknown dropout scheme {name!r}; choose one of {', '.join(sorted(SCHEMES))}"
        )
    return SCHEMES[name]


def foreign_key_message(key: str, params_type: str, source: str | None) -> str | None:
    """One line for a key the chosen scheme does not declare (a Hydra compose error), or None
    when `params_type` is no scheme's params class."""
    chosen = next((s for s in SCHEMES.values() if s.params.__name__ == params_type), None)
    if chosen is None:
        return None
    owners = sorted(name for name, s in SCHEMES.items() if key in s.keys)
    where = f" (set in {source})" if source and not source.startswith("dropout/") else ""
    hint = f"; {key} is a key of {', '.join(owners)}" if owners else ""
    return (f"dropout={chosen.name} has no key '{key}'{where}; its keys: "
            f"{', '.join(chosen.keys)}{hint}")


def scheme_config(name: str, **values):
    """A typed dropout config for scheme `name`: its dataclass defaults, then `values`. For code
    that builds models without composing a Hydra config (tests, benchmark scripts)."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.structured(get_scheme(name).params)
    return OmegaConf.merge(cfg, {"name": name, **values})


def schemes_serving(place: Place) -> list[str]:
    return sorted(name for name, s in SCHEMES.items() if s.serves(place))


def require(scheme: Scheme, place: Place, p: float) -> None:
    """Raise unless `scheme` can drop at `place`; the one message for every mismatch."""
    if scheme.serves(place):
        return
    others = ", ".join(schemes_serving(place)) or "none"
    if not scheme.kinds:
        raise DropbenchError(
            f"dropout={scheme.name} drops nothing, but dropout.{place.key}={p}; set "
            f"dropout.{place.key}=0 or pick a scheme that serves the {place.role} place: {others}")
    what = "a weight layer" if place.kind in ("dense", "conv") and place.kind in scheme.kinds \
        else f"{place.kind} places"
    raise DropbenchError(
        f"dropout={scheme.name} cannot drop the {place.role} place (dropout.{place.key}={p}): "
        f"it serves {', '.join(scheme.kinds) or 'no place'}, not {what}; schemes that can: "
        f"{others}; or set dropout.{place.key}=0"
    )


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
    if scheme.weight_factory(place.kind) is not None:
        return nn.Identity()  # served by make_linear / make_conv at the same place
    return _stamp(scheme.activation(p, cfg), scheme, place)


def make_linear(cfg, in_features: int, out_features: int, p: float, place: Place) -> nn.Module:
    """A fully connected layer at `place`; schemes that drop weights supply their own."""
    scheme = get_scheme(cfg.name)
    if p == 0 or scheme.linear is None:
        return nn.Linear(in_features, out_features)
    require(scheme, place, p)
    return _stamp(scheme.linear(in_features, out_features, p, cfg), scheme, place)


def make_conv(cfg, in_channels: int, out_channels: int, kernel_size: int, p: float,
              place: Place, **kw):
    """A 2-d convolution at `place` (kw as for nn.Conv2d); weight-dropping schemes supply
    their own."""
    scheme = get_scheme(cfg.name)
    if p == 0 or scheme.conv is None:
        return nn.Conv2d(in_channels, out_channels, kernel_size, **kw)
    require(scheme, place, p)
    return _stamp(scheme.conv(in_channels, out_channels, kernel_size, p, cfg, **kw), scheme,
                  place)


RECURRENT_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


def make_recurrent(cfg, cell: str, input_size: int, hidden_size: int, p: float,
                   place: Place) -> nn.Module:
    """One recurrent layer (`cell` is lstm or gru) called as layer(x, state) -> (out, state) on
    (T, B, input_size) inputs; p is the rate on its recurrent connections."""
    if p == 0:
        return RECURRENT_CELLS[cell](input_size, hidden_size)
    scheme = get_scheme(cfg.name)
    require(scheme, place, p)
    return _stamp(scheme.recurrent(cell, input_size, hidden_size, p, cfg), scheme, place)


def make_embedding(cfg, num_words: int, dim: int, p: float, place: Place) -> nn.Module:
    """A word embedding (an nn.Embedding); p drops whole words (embedding dropout)."""
    if p == 0:
        return nn.Embedding(num_words, dim)
    scheme = get_scheme(cfg.name)
    require(scheme, place, p)
    return _stamp(scheme.embedding(num_words, dim, p, cfg), scheme, place)
