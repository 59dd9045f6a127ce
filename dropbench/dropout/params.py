"""What schemes and models declare about dropout, and the checks that follow from it.

A *place* is somewhere a model puts dropout (its input, its hidden layers, the recurrent
connections, ...). Each model declares its places; each place has a *kind*, the sort of thing
dropped there, and the config key that holds its rate. Each scheme declares the kinds it can
serve and its parameters as a dataclass (one Hydra structured config per scheme, so a key the
scheme does not have fails when the config is composed). Field metadata carries the range
checks, so `check_params` and `dropbench list` read the same declaration.

Rate keys mean the same kind of thing in every model family:
    p_input      the network's input (pixels, or the embedded words of a language model)
    p            the outputs of the hidden layers (one number, or one rate per layer)
    p_output     a language model's last layer, before the softmax
    p_recurrent  the recurrent connections inside each LSTM/GRU layer
    p_embed      whole words of the embedding matrix
"""

from dataclasses import dataclass, field, fields
from typing import Any

from omegaconf import MISSING

from dropbench import DropbenchError
from dropbench.config import check_rate, is_list, layer_rates  # noqa: F401  (torch-free home)

KINDS = {
    "dense": "units of fully connected layers (and an MLP's input)",
    "conv": "feature maps of convolutional layers (and a CNN's input image)",
    "sequence": "per-step features of a recurrent net (embedded words, between layers, output)",
    "recurrent": "the recurrent connections inside an LSTM/GRU layer",
    "embedding": "whole words (rows) of an embedding matrix",
}
RATE_KEYS = ("p_input", "p", "p_output", "p_recurrent", "p_embed")


@dataclass(frozen=True)
class Place:
    """One place for dropout in a model; `count` places share `key` in model order."""

    role: str  # what a reader calls it: input, hidden, conv, fc, output, recurrent, embedding
    key: str  # the dropout config key with its rate (RATE_KEYS)
    kind: str  # KINDS
    count: int = 1
    layer: bool = False  # a weight layer is built here through the registry (make_linear/conv)

    def __str__(self) -> str:
        return f"{self.role} (dropout.{self.key})"


# --- declaring parameters ------------------------------------------------------------------
def rate(default: float, doc: str):
    """A drop probability in [0, 1)."""
    return field(default=default, metadata={"check": "rate", "doc": doc})


def rates(default: Any, doc: str):
    """A drop probability, or a list with one per layer."""
    return field(default=default, metadata={"check": "rates", "doc": doc})


def choice(default: str, options: tuple[str, ...], doc: str):
    return field(default=default, metadata={"choices": options, "doc": doc})


def at_least(default, minimum, doc: str):
    return field(default=default, metadata={"min": minimum, "doc": doc})


def above(default, bound, doc: str):
    return field(default=default, metadata={"above": bound, "doc": doc})


def option(default, doc: str):
    """A setting without a range (a flag)."""
    return field(default=default, metadata={"doc": doc})


def cnn_layers():
    return choice("all", ("all", "fc"), "CNNs: all = input, conv and fc places; fc = the fully "
                  "connected places only")


@dataclass
class DropoutParams:
    """Every scheme's config starts here."""

    name: str = MISSING


@dataclass
class UnitRates(DropoutParams):
    """Rates of a scheme that drops units of feed-forward layers."""

    p: Any = rates(0.5, "outputs of the hidden layers: a number or one rate per layer")
    p_input: float = rate(0.0, "the network's input")


@dataclass
class ConvUnitRates(UnitRates):
    """Unit rates plus the choice of CNN layers."""

    where: str = cnn_layers()


@dataclass
class AnyUnitRates(ConvUnitRates):
    """Unit rates of a scheme that also serves recurrent nets' sequences."""

    p_output: float = rate(0.0, "language models: the last layer's output, before the softmax")


@dataclass
class RecurrentRates(DropoutParams):
    """Rates of a scheme for recurrent language models."""

    p_embed: float = rate(0.0, "whole words of the embedding matrix")
    p_input: float = rate(0.0, "the embedding output (the first layer's input)")
    p: Any = rates(0.0, "between recurrent layers: a number or one rate per gap")
    p_output: float = rate(0.0, "the last layer's output, before the softmax")
    p_recurrent: float = rate(0.0, "the recurrent connections inside each layer")


# --- checking ------------------------------------------------------------------------------
def declared(params_type) -> list:
    """The declared fields of a scheme's params dataclass, `name` left out."""
    return [f for f in fields(params_type) if f.name != "name"]


def check_params(cfg, params_type, scheme: str) -> None:
    """Range checks of every declared field of `cfg` (a composed dropout config); a key added
    with `+dropout.KEY=...` that the scheme does not declare is refused too."""
    keys = [f.name for f in declared(params_type)]
    extra = [k for k in cfg if k != "name" and k not in keys]
    if extra:
        raise DropbenchError(f"dropout={scheme} has no key {extra[0]!r}; its keys: "
                             f"{', '.join(keys)}")
    for f in declared(params_type):
        value, meta, what = cfg[f.name], f.metadata, f"dropout.{f.name}"
        if meta.get("check") == "rate":
            check_rate(value, what)
        elif meta.get("check") == "rates":
            for r in value if is_list(value) else [value]:
                check_rate(r, what)
        elif "choices" in meta and value not in meta["choices"]:
            raise DropbenchError(f"{what}={value!r} is unknown for dropout={scheme}; use "
                                 f"{' or '.join(meta['choices'])}")
        elif "min" in meta and value < meta["min"]:
            raise DropbenchError(f"{what}={value} must be >= {meta['min']} ({meta['doc']})")
        elif "above" in meta and value <= meta["above"]:
            raise DropbenchError(f"{what}={value} must be > {meta['above']} ({meta['doc']})")

