"""What schemes and models declare about dropout, and the checks that follow from it.

A *place* is somewhere a model puts dropout (its input, its hidden layers, the recurrent
connections, ...). Each model declares its places; each place has a *kind*, the sort of thing
dropped there, and the config key that holds its rate. Each scheme declares the kinds it can
serve and its parameters as a dataclass (one Hydra structured config per scheme, so a key the
scheme does not have fails when the config is composed). Field metadata carries the range
checks (dropbench/ranges.py), so `check_params` and `dropbench list` read the same
declaration.

The kinds are registered (dropbench.registry.register_place_kind; kinds.py holds the built-in
ones), so a model may offer a new kind and a scheme serve it without a central list. A rate key
is any params field declared with `rate`/`rates`; the built-in keys mean the same kind of
thing in every model family:
    p_input      the network's input (pixels, or the embedded words of a language model)
    p            the outputs of the hidden layers (one number, or one rate per layer)
    p_output     a language model's last layer, before the softmax
    p_recurrent  the recurrent connections inside each LSTM/GRU layer
    p_embed      whole words of the embedding matrix
    p_attn       a Transformer's attention probabilities
    p_branch     residual branches, dropped whole (DropPath)
"""

from dataclasses import dataclass, fields
from typing import Any

from omegaconf import MISSING

from dropbench.dropout.schedule import SCHEDULES, UNITS
from dropbench.errors import DropbenchError
from dropbench.ranges import (  # noqa: F401  (the schemes' declarations import them from here)
    above,
    at_least,
    between,
    check_rate,
    check_value,
    choice,
    depth_rates,
    is_list,
    layer_rates,
    option,
    rate,
    rates,
)


@dataclass(frozen=True)
class Place:
    """One place for dropout in a model; `count` places share `key` in model order."""

    role: str  # what a reader calls it: input, hidden, conv, fc, output, recurrent, embedding
    key: str  # the dropout config key with its rate (a rate field of the scheme's params)
    kind: str  # a registered place kind (dropbench.registry.PLACE_KINDS; kinds.py: built-ins)
    count: int = 1
    layer: bool = False  # a weight layer is built here through the registry (make_linear/conv)
    sized_by: str | None = None  # the model key (a list of widths) whose length sets count

    def __str__(self) -> str:
        return f"{self.role} (dropout.{self.key})"


# --- declaring parameters: the field helpers of dropbench/ranges.py ----------------------------
def cnn_layers():
    return choice("all", ("all", "fc"), "CNNs: all = input, conv and fc places; fc = the fully "
                  "connected places only")


@dataclass
class DropoutParams:
    """Every scheme's config starts here, with the schedule all its rates follow (schedule.py)."""

    name: str = MISSING
    schedule: str = choice("constant", SCHEDULES, "every rate over training: constant; early "
                           "(p until the cutoff, then 0); late (0, then p); linear_down / "
                           "linear_up (falling to 0 / rising to p at the cutoff)")
    schedule_until: float = between(0.25, 0.0, 1.0, "the schedule's cutoff, a fraction of "
                                    "training", low_open=True)
    schedule_unit: str = choice("step", UNITS, "what the schedule counts: training steps (Liu "
                                "et al.) or epochs (the rate changes only between epochs)")


# every scheme's, so no scheme lists them as its own
SHARED_KEYS = ("schedule", "schedule_until", "schedule_unit")


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


def rate_keys(params_type) -> list[str]:
    """The fields of a scheme's params that hold drop rates (declared with `rate`/`rates`/
    `depth_rates`)."""
    return [f.name for f in declared(params_type) if "rate" in f.metadata]


def rate_spread(params_type, key: str) -> str:
    """How one number given for rate field `key` spreads over its places (ranges.layer_rates):
    "by_depth" for fields declared with `depth_rates`, else the same rate everywhere."""
    spread = {f.name: f.metadata.get("rate") for f in declared(params_type)}.get(key)
    return "by_depth" if spread == "by_depth" else "per_layer"


def check_params(cfg, params_type, scheme: str) -> None:
    """Range checks of every declared field of `cfg` (a composed dropout config); a key added
    with `+dropout.KEY=...` that the scheme does not declare is refused too."""
    keys = [f.name for f in declared(params_type)]
    extra = [k for k in cfg if k != "name" and k not in keys]
    if extra:
        raise DropbenchError(f"dropout={scheme} has no key {extra[0]!r}; its keys: "
                             f"{', '.join(keys)}")
    for f in declared(params_type):
        if f.name in cfg:  # a config built by hand (tests, the API) may leave defaults out
            check_value(f"dropout.{f.name}", cfg[f.name], f)
