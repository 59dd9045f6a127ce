"""Short names for configurations in figures: what differs between them, nothing else.

A configuration is named by the grouping keys whose values differ between the configurations
that have the key, in the form `standard p=0.5 p_input=0.2`. A dropout key is shown only for a
scheme that declares it (dropout/catalog.py); scheme `none` is just `none`, and a value a
configuration lacks ("n/a": the key belongs to another scheme) is never shown. When the names
would still be long, configurations are numbered and the numbers explained in a key table.
"""

import math
from dataclasses import dataclass

import pandas as pd

from dropbench import registry
from dropbench.dropout.params import SHARED_KEYS
from dropbench.report.collect import format_value

MAX_LABEL = 30  # longer names make legends wider than their panel: number them instead
SCHEME = "dropout.name"
NO_DROPOUT = " (no dropout)"


@dataclass(frozen=True)
class Labels:
    """`names[group]`: the name figures show; `key`: (name, full description) rows, set when
    the names are numbers, to print with the figures."""

    names: dict[str, str]
    full: dict[str, str]  # the descriptions, also where `names` are numbers
    key: tuple[tuple[str, str], ...] = ()

    @property
    def numbered(self) -> bool:
        return bool(self.key)


def missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == "n/a"


def scheme_lacks(row: pd.Series, key: str) -> bool:
    """A dropout key the configuration's scheme does not have (every key, for `none`)."""
    if not key.startswith("dropout.") or key == SCHEME:
        return False
    scheme = row.get(SCHEME)
    entry = registry.SCHEMES.find(scheme) if isinstance(scheme, str) else None
    if entry is None:
        return False
    declared = entry.declaration
    own = key.split(".", 1)[1]
    return declared.name == "none" or own not in declared.keys and own not in SHARED_KEYS


def short_key(key: str, keys: list[str]) -> str:
    """`dropout.p` -> `p`, unless another key ends the same way (then the full key); a
    group's chosen option reads as it is chosen: `objective.name` -> `objective`."""
    group, _, last = key.rpartition(".")
    if last == "name" and group and "." not in group:
        return group
    clash = sum(k.rsplit(".", 1)[-1] == last for k in keys) > 1
    return key if clash else last


def describe(row: pd.Series, keys: list[str], usual: dict[str, str]) -> str:
    """`standard p=0.5 p_input=0.2`: the scheme's name bare, then every key the scheme has
    whose value is set and is not the value most configurations share (`usual`)."""
    parts = []
    for key in keys:
        value = row.get(key)
        if missing(value) or scheme_lacks(row, key):
            continue
        text = format_value(value)
        if key == SCHEME:
            parts.append(text)
        elif usual.get(key) != text:
            parts.append(f"{short_key(key, keys)}={text}")
    return " ".join(parts)


FIRST_KEYS = ("dropout.name", "dropout.p")  # the scheme, then its main rate, then the rest


def values_of(first: pd.DataFrame, key: str, showing: bool = False) -> list[str]:
    """The key's value per configuration: a dropout key only where it is set and the scheme
    has it (scheme `none` has every rate, all 0, unless `showing`: the names never show its
    keys); an unset other key (optim.max_norm null) counts as a value of its own."""
    values = []
    for _, row in first.iterrows():
        value = row.get(key)
        if key.startswith("dropout.") and key != SCHEME:
            lacks = scheme_lacks(row, key) and (showing or row.get(SCHEME) != "none")
            if missing(value) or lacks:
                continue
        values.append("null" if missing(value) else format_value(value))
    return values


def differing(first: pd.DataFrame, keys: list[str]) -> list[str]:
    """The keys whose values differ between the configurations that have them, the scheme and
    its main rate first."""
    keys = [k for k in FIRST_KEYS if k in keys] + [k for k in keys if k not in FIRST_KEYS]
    return [k for k in keys if k in first and len(set(values_of(first, k))) > 1]


def usual_values(first: pd.DataFrame, keys: list[str]) -> dict[str, str]:
    """Per key, among three or more configurations, the value held by more than half of those
    whose names would show it: left out of the names, so `standard` and `dropconnect` are not
    both followed by `p=0.5`."""
    usual = {}
    if len(first) < 3:
        return usual
    for key in keys:
        values = pd.Series(values_of(first, key, showing=True), dtype=object)
        if key == SCHEME or values.empty:
            continue
        counts = values.value_counts()
        if counts.iloc[0] * 2 > len(values):
            usual[key] = counts.index[0]
    return usual


def name_all(first, order, keys, usual, off, fallback) -> dict[str, str]:
    names = {}
    for group in order:
        row = first.loc[group]
        name = describe(row, keys, usual) or fallback
        if off.get(group, False) and row.get(SCHEME) != "none" and NO_DROPOUT not in name:
            name += NO_DROPOUT
        names[group] = name
    return names


def configuration_labels(runs: pd.DataFrame, keys: list[str], column: str = "group",
                         order: list[str] | None = None, fallback: str = "all runs") -> Labels:
    """Short names for the values of `runs[column]`, from the config keys `keys`."""
    first = runs.drop_duplicates(column).set_index(column)
    order = order if order is not None else list(first.index)
    keys = differing(first, keys)
    off = runs.groupby(column)["dropout_off"].all() if "dropout_off" in runs else {}
    names = name_all(first, order, keys, usual_values(first, keys), off, fallback)
    if len(set(names.values())) < len(names):  # leaving the usual values out was ambiguous
        names = name_all(first, order, keys, {}, off, fallback)
    unique = len(set(names.values())) == len(names)
    if unique and max(map(len, names.values()), default=0) <= MAX_LABEL:
        return Labels(names, names)
    full = names if unique else {g: g for g in order}
    numbered = {group: str(i) for i, group in enumerate(order, start=1)}
    return Labels(numbered, full, tuple((numbered[g], full[g]) for g in order))
