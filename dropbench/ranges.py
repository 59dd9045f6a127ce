"""Declared ranges of config values, and the one check that reads them.

Every schema field that has a range, a set of choices or a rate says so in its dataclass field
metadata, built by the helpers below (`at_least`, `above`, `between`, `choice`, `rate`, ...).
`check_node` walks a composed config node against its schema and raises one line naming the
key, the allowed values and what to write instead. Types are Hydra's business (a string for an
int fails at composition); this module checks what types cannot say. Torch-free, so config
validation runs before torch is imported.
"""

import math
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from omegaconf import ListConfig

from dropbench.errors import DropbenchError

SEED_MAX = 2**32 - 1  # numpy's legacy seeding (and so torch's and random's) takes 0 .. 2**32-1


def is_list(x: Any) -> bool:
    return isinstance(x, (list, tuple, ListConfig))


def is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


@dataclass(frozen=True)
class Bound:
    """The numbers a field admits: finite, between `low` and `high` (None: no limit), the
    limits themselves included unless marked open."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def admits(self, x: Any) -> bool:
        if not is_number(x) or not math.isfinite(x):  # nan and inf pass no comparison here
            return False
        above_low = self.low is None or (x > self.low if self.low_open else x >= self.low)
        below_high = self.high is None or (x < self.high if self.high_open else x <= self.high)
        return above_low and below_high

    def __str__(self) -> str:
        low, high = _number(self.low), _number(self.high)
        if self.low is not None and self.high is not None:
            return (f"in {'(' if self.low_open else '['}{low}, {high}"
                    f"{')' if self.high_open else ']'}")
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {low}"
        if self.high is not None:
            return f"{'<' if self.high_open else '<='} {high}"
        return "finite"


def _number(x: float | None) -> str:
    """4294967295, not 4.29497e+09: a limit is shown as it would be typed."""
    return str(int(x)) if x is not None and float(x).is_integer() else str(x)


RATE = Bound(0.0, 1.0, high_open=True)  # a drop probability


# --- declaring fields ------------------------------------------------------------------------
def _field(default, doc: str, factory: bool = False, **meta):
    meta = {"doc": doc, **meta}
    if factory:
        return field(default_factory=default, metadata=meta)
    return field(default=default, metadata=meta)


def at_least(default, minimum, doc: str, null: str | None = None):
    """A number >= minimum; `null`: what null means, for fields that may be null."""
    return _field(default, doc, bound=Bound(minimum), null=null)


def above(default, limit, doc: str, null: str | None = None):
    """A number > limit."""
    return _field(default, doc, bound=Bound(limit, low_open=True), null=null)


def between(default, low, high, doc: str, *, low_open: bool = False, high_open: bool = False):
    return _field(default, doc, bound=Bound(low, high, low_open, high_open))


def widths(default_factory, doc: str, min_items: int = 0):
    """A list of sizes, each >= 1, with at least `min_items` of them."""
    return _field(default_factory, doc, factory=True, each=Bound(1), min_items=min_items)


def choice(default: str, options: tuple[str, ...], doc: str):
    return _field(default, doc, choices=tuple(options))


def rate(default: float, doc: str):
    """A drop probability in [0, 1)."""
    return _field(default, doc, rate="one")


def rates(default: Any, doc: str):
    """A drop probability, or a list with one per layer."""
    return _field(default, doc, rate="per_layer")


def depth_rates(default: Any, doc: str):
    """The deepest place's drop probability, the places before it rising linearly from 0 in
    model order; or a list with one per place."""
    return _field(default, doc, rate="by_depth")


SPREADS = ("per_layer", "by_depth")  # rate fields that take a list, one rate per place


def option(default, doc: str):
    """A setting without a range (a flag, a path)."""
    return _field(default, doc)


def describe(f) -> str:
    """A field's one-line help and what it admits, as `train --help` shows it next to the key:
    "drop probability of the hidden units; in [0, 1)"."""
    meta = f.metadata
    if "rate" in meta:
        admits = "in [0, 1)" + (", or a list with one per place" if meta["rate"] in SPREADS
                                else "")
    elif "choices" in meta:
        admits = "one of " + ", ".join(meta["choices"])
    elif "bound" in meta:
        admits = str(meta["bound"]) + (f", or null: {meta['null']}" if meta.get("null") else "")
    elif "each" in meta:
        admits = f"integers {meta['each']}"
    else:
        admits = ""
    return "; ".join(part for part in (meta.get("doc", ""), admits) if part)


# --- checking --------------------------------------------------------------------------------
def check_rate(p: Any, what: str) -> float:
    try:
        if isinstance(p, bool):  # float(False) would pass a flag off as a rate of 0
            raise TypeError
        p = float(p)
    except (TypeError, ValueError):
        raise DropbenchError(
            f"{what}={p!r} is not a number; use a drop probability in [0, 1)"
        ) from None
    if not RATE.admits(p):
        raise DropbenchError(f"{what}={p} is out of range; use a drop probability in [0, 1)")
    return p


def layer_rates(p: Any, n_layers: int, what: str = "dropout.p",
                spread: str = "per_layer") -> list[float]:
    """Expand a single rate or a per-layer list into one rate per layer. A single rate goes to
    every layer, or with spread="by_depth" to the last one, layer i of n getting p * i / (n - 1)."""
    if is_list(p):
        values = list(p)
    elif spread == "by_depth" and n_layers > 1:  # the last layer gets p itself, exactly
        p = check_rate(p, what)
        values = [p * i / (n_layers - 1) for i in range(n_layers - 1)] + [p]
    else:
        values = [p] * n_layers
    if len(values) != n_layers:
        raise DropbenchError(
            f"{what} has {len(values)} rates but the model has {n_layers} places for it; "
            f"give one number or a list of {n_layers}"
        )
    return [check_rate(r, what) for r in values]


def _kind(type_: Any) -> str:
    return "an integer" if type_ is int or str(type_).startswith("int") else "a number"


def check_value(key: str, value: Any, f) -> None:
    """Raise one line unless `value` fits what field `f` declares."""
    meta = f.metadata
    doc = f" ({meta['doc']})" if meta.get("doc") else ""
    if "rate" in meta:
        for r in value if meta["rate"] in SPREADS and is_list(value) else [value]:
            check_rate(r, key)
    elif "choices" in meta and value not in meta["choices"]:
        *rest, last = meta["choices"]
        raise DropbenchError(f"{key}={value!r} is unknown; use "
                             f"{', '.join(rest) + ' or ' if rest else ''}{last}")
    elif "bound" in meta and not (value is None and meta.get("null")):
        bound = meta["bound"]
        if not bound.admits(value):
            null = f", or null ({meta['null']})" if meta.get("null") else ""
            raise DropbenchError(f"{key}={value} is out of range; use {_kind(f.type)} "
                                 f"{bound}{doc}{null}")
    elif "each" in meta:
        items = list(value) if is_list(value) else [value]
        if len(items) < meta["min_items"] or not all(meta["each"].admits(v) for v in items):
            least = f"at least {meta['min_items']} " if meta["min_items"] else ""
            raise DropbenchError(f"{key}={_show(value)} is out of range; use a list of {least}"
                                 f"integers {meta['each']}{doc}")


def _show(value: Any) -> str:
    return f"[{','.join(map(str, value))}]" if is_list(value) else str(value)


def check_node(node, schema: type, prefix: str, nested=None) -> None:
    """Check every declared field of config `node` against dataclass `schema`. Fields whose
    type is itself a dataclass are checked recursively; `nested(key, subnode)` gives the
    schema of a field typed Any (a model or dropout block), or None to skip it."""
    for f in fields(schema):
        if f.name not in node:
            continue
        key, value = f"{prefix}{f.name}", node[f.name]
        if is_dataclass(f.type) and value is not None:
            check_node(value, f.type, f"{key}.", nested)
            continue
        sub = nested(f.name, value) if nested and f.type is Any and value is not None else None
        if sub is not None:
            check_node(value, sub, f"{key}.", nested)
        else:
            check_value(key, value, f)
