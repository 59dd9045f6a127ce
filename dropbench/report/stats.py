"""Is a configuration really better than its baseline? Differences over seeds with a 95 %
confidence interval and a p-value, Holm-corrected across the comparisons of one report.

Two-sided t tests on one number per run (the test metric at the best validation epoch):
- paired by seed (a t test on the per-seed differences) when both sides hold the same seeds,
  each once: seeds share the data split and initialisation stream, so pairing removes that
  shared noise;
- otherwise Welch's unequal-variance t test, with the Welch-Satterthwaite degrees of freedom.
Holm's step-down correction keeps the chance of any false "significant" among the m
comparisons at or below 5 %.
"""

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from dropbench import rundir
from dropbench.errors import DropbenchError
from dropbench.report.collect import HIGHER_IS_BETTER, format_value

ALPHA = 0.05
MIN_SEEDS = 3  # below this on either side the table says the comparison is too thin


@dataclass
class Comparison:
    diff: float  # mean(config) - mean(baseline), raw units
    ci_low: float
    ci_high: float
    p: float  # two-sided, uncorrected; NaN when it cannot be computed
    paired: bool
    n: int
    n_baseline: int


def welch(a: np.ndarray, b: np.ndarray) -> Comparison:
    """mean(a) - mean(b), Welch's 95 % interval and two-sided p-value."""
    diff = a.mean() - b.mean()
    if len(a) < 2 or len(b) < 2:
        return Comparison(diff, math.nan, math.nan, math.nan, False, len(a), len(b))
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0.0:  # every seed gave the same number on both sides: no noise to test against,
        # and no interval either (a zero-width one would read as certainty)
        return Comparison(diff, math.nan, math.nan, math.nan, False, len(a), len(b))
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return _t_result(diff, se, df, False, len(a), len(b))


def paired(a: np.ndarray, b: np.ndarray) -> Comparison:
    """The same, on per-seed differences a[i] - b[i] (df = n - 1)."""
    d = a - b
    if len(d) < 2:
        return Comparison(d.mean(), math.nan, math.nan, math.nan, True, len(a), len(b))
    se = d.std(ddof=1) / math.sqrt(len(d))
    if se == 0.0:  # every seed moved by the same amount: as above, no interval
        return Comparison(d.mean(), math.nan, math.nan, math.nan, True, len(a), len(b))
    return _t_result(d.mean(), se, len(d) - 1, True, len(a), len(b))


def _t_result(diff, se, df, is_paired, n, n_baseline) -> Comparison:
    half = stats.t.ppf(1 - ALPHA / 2, df) * se
    p = 2 * stats.t.sf(abs(diff) / se, df)
    return Comparison(diff, diff - half, diff + half, float(p), is_paired, n, n_baseline)


def holm(p_values: list[float]) -> list[float]:
    """Holm-adjusted p-values (NaN stays NaN and does not count towards m)."""
    valid = [(p, i) for i, p in enumerate(p_values) if not math.isnan(p)]
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(valid)):
        running = max(running, min(1.0, (len(valid) - rank) * p))
        adjusted[i] = running
    return adjusted


def compare_runs(config: pd.DataFrame, baseline: pd.DataFrame, column: str) -> Comparison:
    """Paired by seed when both sides hold the same seeds once each, else Welch."""
    if "seed" not in config:
        return welch(config[column].dropna().to_numpy(float),
                     baseline[column].dropna().to_numpy(float))
    a = config[["seed", column]].dropna(subset=[column])
    b = baseline[["seed", column]].dropna(subset=[column])
    seeds_a, seeds_b = list(a["seed"]), list(b["seed"])
    if (len(seeds_a) > 1 and sorted(seeds_a) == sorted(seeds_b)
            and len(set(seeds_a)) == len(seeds_a)):
        a, b = a.sort_values("seed"), b.sort_values("seed")
        return paired(a[column].to_numpy(float), b[column].to_numpy(float))
    return welch(a[column].to_numpy(float), b[column].to_numpy(float))


# --- which configuration is whose baseline ------------------------------------------------------
def pick_baselines(runs: pd.DataFrame, groups: list[str], by: list[str], rate: str | None,
                   chosen: str | None) -> dict[str, str]:
    """{configuration: its baseline}. --baseline when given; else a configuration without
    dropout, the one sharing the configuration's other settings (optim.lr, ...) when there is
    one; else, per line of the rate sweep (the other `by` values), its lowest rate."""
    if chosen:
        base = match_group(runs, groups, by, chosen)
        return {g: base for g in groups if g != base}
    first = runs.drop_duplicates("group").set_index("group")
    off = [g for g in groups if runs.loc[runs["group"] == g, "dropout_off"].all()]
    if off:
        settings = line_labels(first, [c for c in by if not c.startswith("dropout.")])
        own = {}
        for g in off:
            own.setdefault(settings[g], g)
        return {g: own.get(settings[g], off[0]) for g in groups
                if g != own.get(settings[g], off[0])}
    if rate is None:
        return {}
    rates = pd.to_numeric(first[rate], errors="coerce")
    if rates.isna().any():
        return {}
    baselines = {}
    for _, members in rates.groupby(line_labels(first, [c for c in by if c != rate])):
        lowest = members.idxmin()
        baselines.update({g: lowest for g in members.index if g != lowest})
    return {g: baselines[g] for g in groups if g in baselines}


def line_labels(first: pd.DataFrame, keys: list[str]) -> pd.Series:
    """Per configuration (index), its values of `keys` as one label."""
    return pd.Series([", ".join(format_value(first.at[g, c]) for c in keys)
                      for g in first.index], index=first.index)


def match_group(runs: pd.DataFrame, groups: list[str], by: list[str], text: str) -> str:
    """A configuration named by its label or by KEY=VALUE[,KEY=VALUE] among the `by` keys."""
    if text in groups:
        return text
    wanted = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in by:
            raise DropbenchError(f"--baseline {text!r}: give KEY=VALUE with KEY among the "
                                 f"grouping keys ({', '.join(by) or 'none'}), e.g. "
                                 f"--baseline {by[0] if by else 'dropout.p'}=0")
        wanted[key.strip()] = value.strip()
    found = [g for g in groups if all(
        format_value(v) == wanted[k]
        for k, v in runs.loc[runs["group"] == g, list(wanted)].iloc[0].items())]
    if len(found) != 1:
        raise DropbenchError(f"--baseline {text!r} matches {len(found)} configurations; "
                             f"choose one of: {'; '.join(groups)}")
    return found[0]


def significance(runs: pd.DataFrame, groups: list[str], by: list[str], m: str,
                 rate: str | None, chosen: str | None) -> pd.DataFrame:
    """The comparison table of the runs scored with metric m (empty when nothing to compare):
    the test metric at the best validation epoch, or the best validation metric while no run
    has a test score yet."""
    test = pd.to_numeric(runs.get(rundir.test_key(m), pd.Series(dtype=float)), errors="coerce")
    column = rundir.test_key(m) if test.notna().any() else rundir.best_val_key(m)
    baselines = pick_baselines(runs, groups, by, rate, chosen)
    return significance_table(runs, baselines, column, m in HIGHER_IS_BETTER)


# --- the table ---------------------------------------------------------------------------------
def verdict(c: Comparison, p_holm: float, higher_is_better: bool) -> str:
    """A plain-language reading of one comparison."""
    thin = min(c.n, c.n_baseline) < MIN_SEEDS
    if math.isnan(p_holm):
        return ("too few runs to test (n < 2)" if min(c.n, c.n_baseline) < 2
                else "no spread between seeds: cannot test")
    if p_holm >= ALPHA:
        reading = "within noise"
    else:
        better = (c.diff > 0) == higher_is_better
        reading = f"significantly {'better' if better else 'worse'}"
    return reading + (" (n < 3: treat with caution)" if thin else "")


def significance_table(runs: pd.DataFrame, baselines: dict[str, str], column: str,
                       higher_is_better: bool) -> pd.DataFrame:
    """One row per configuration with a baseline: diff, CI, p, Holm p, paired, verdict."""
    rows = []
    for group, base in baselines.items():
        c = compare_runs(runs[runs["group"] == group], runs[runs["group"] == base], column)
        rows.append({"configuration": group, "baseline": base, "quantity": column,
                     "n": c.n, "n_baseline": c.n_baseline, "paired": c.paired,
                     "difference": c.diff, "ci_low": c.ci_low, "ci_high": c.ci_high,
                     "p_value": c.p, "_c": c})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["p_holm"] = holm(table["p_value"].tolist())
    table["verdict"] = [verdict(c, p, higher_is_better)
                        for c, p in zip(table.pop("_c"), table["p_holm"], strict=True)]
    return table


def markdown_frame(table: pd.DataFrame, scale: float, unit: str) -> pd.DataFrame:
    """Display strings: difference and interval in the table's units, p-values to 3 digits."""
    def num(v):
        return "–" if pd.isna(v) else f"{v * scale:+.2f}"

    def pval(v):
        return "–" if pd.isna(v) else ("< 0.001" if v < 0.001 else f"{v:.3f}")

    return pd.DataFrame({
        "configuration": table["configuration"], "baseline": table["baseline"],
        "n vs n": [f"{a} vs {b}" for a, b in zip(table["n"], table["n_baseline"], strict=True)],
        "test": ["paired by seed" if p else "Welch" for p in table["paired"]],
        f"difference{unit}": table["difference"].map(num),
        "95 % CI": [f"[{num(lo)}, {num(hi)}]" if not pd.isna(lo) else "–"
                    for lo, hi in zip(table["ci_low"], table["ci_high"], strict=True)],
        "p": table["p_value"].map(pval), "p (Holm)": table["p_holm"].map(pval),
        "verdict": table["verdict"],
    })
