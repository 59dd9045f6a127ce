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

from dropbench.dropout.catalog import DECLARED
from dropbench.report.collect import format_value

MAX_LABEL = 30  # longer names make legends wider than their panel: number them instead
SCHEME = "dropout.name"
NO_DROPOUT = " (no dropout)"


@dataclass(frozen=True)
class Labels:
    """`names[group]`: the name figures show; `key`: (name, full description) rows, set when
    the names are numbers, to print beside the figures."""

    names: dict[str, str]
    full: dict[str, str]  # the descriptions, also where `names` are numbers
    key: tuple[tuple[str, str], ...] = ()

    @property
    def numbered(self) -> bool:
        return bool(self.key)


def missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == "n/a"


def shown_keys(row: pd.Series, keys: list[str]) -> list[str]:
    """The keys of `keys` that belong to this configuration's scheme."""
    scheme = row.get(SCHEME)
    declared = DECLARED.get(scheme) if isinstance(scheme, str) else None
    kept = []
    for key in keys:
        if missing(row.get(key)):
            continue
        if key.startswith("dropout.") and key != SCHEME and declared is not None:
            if declared.name == "none" or key.split(".", 1)[1] not in declared.keys:
                continue
        kept.append(key)
    return kept


def short_key(key: str, keys: list[str]) -> str:
    """`dropout.p` -> `p`, unless another key ends the same way (then the full key)."""
    last = key.rsplit(".", 1)[-1]
    clash = sum(k.rsplit(".", 1)[-1] == last for k in keys) > 1
    return key if clash else last


def describe(row: pd.Series, keys: list[str]) -> str:
    """`standard p=0.5 p_input=0.2`: the scheme's name bare, every other key as key=value."""
    parts = []
    for key in shown_keys(row, keys):
        value = format_value(row[key])
        parts.append(value if key == SCHEME else f"{short_key(key, keys)}={value}")
    return " ".join(parts)


FIRST_KEYS = ("dropout.name", "dropout.p")  # the scheme, then its main rate, then the rest


def differing(first: pd.DataFrame, keys: list[str]) -> list[str]:
    """The keys whose values differ between the configurations that have them, the scheme and
    its main rate first."""
    keys = [k for k in FIRST_KEYS if k in keys] + [k for k in keys if k not in FIRST_KEYS]
    result = []
    for key in keys:
        if key not in first:
            continue
        present = [format_value(v) for v in first[key] if not missing(v)]
        if len(set(present)) > 1:
            result.append(key)
    return result


def configuration_labels(runs: pd.DataFrame, keys: list[str], column: str = "group",
                         order: list[str] | None = None, fallback: str = "all runs") -> Labels:
    """Short names for the values of `runs[column]`, from the config keys `keys`."""
    first = runs.drop_duplicates(column).set_index(column)
    order = order if order is not None else list(first.index)
    keys = differing(first, keys)
    off = runs.groupby(column)["dropout_off"].all() if "dropout_off" in runs else {}
    names = {}
    for group in order:
        row = first.loc[group]
        name = describe(row, keys) or fallback
        if off.get(group, False) and row.get(SCHEME) != "none" and name != fallback:
            name += NO_DROPOUT
        names[group] = name
    unique = len(set(names.values())) == len(names)
    if unique and max(map(len, names.values()), default=0) <= MAX_LABEL:
        return Labels(names, names)
    full = names if unique else {g: g for g in order}
    numbered = {group: str(i) for i, group in enumerate(order, start=1)}
    return Labels(numbered, full, tuple((numbered[g], full[g]) for g in order))
