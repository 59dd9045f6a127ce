"""Find run directories under some paths and read them into pandas tables.

A run dir (docs/run-dir.md, names in dropbench/rundir.py) holds `.hydra/config.yaml`,
`metrics.csv` (one row per epoch) and `summary.json`. This module reads files only: it never
imports the engine, so it also works on runs copied from another machine, on sweeps that are
still running and on killed ones.

Each job counts once: two run dirs side by side (in one sweep dir) whose configs, seed
included, differ only in keys that do not change results (threads, device, loggers:
rundir.tells_results_apart) hold the same job, as a sweep resumed under an earlier naming of
job dirs leaves them; the one that got furthest is read and the other is listed among the
runs left out, with the reason.
"""

import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

import dropbench.rundir as rundir  # not via the package: its facade reads runs through here
import dropbench.units as units
from dropbench.errors import DropbenchError
from dropbench.rundir import find_run_dirs, format_value

log = logging.getLogger("dropbench")

# Config keys that never define a configuration: the seed we aggregate over, and those that
# only say how or where a run was carried out (rundir.RESUME_MAY_CHANGE, apart from
# trainer.epochs, whose value changes the results).
NOT_A_SETTING_PREFIXES = ("hydra.", "paper.")
DUPLICATE = "duplicate"  # the status a job's second dir is listed with among the left-out runs
HIGHER_IS_BETTER = units.HIGHER_IS_BETTER  # acc, ll; the others (loss, ppl, rmse): lower
MC_SAMPLE_KEYS = ("T", "samples", "mc_samples", "n_samples")
CALIBRATION_SCORES = ("acc", "nll", "brier", "ece")  # eval_compare.calibration.<method>.<score>
RELIABILITY_COLUMNS = ["method", "bin", "lower", "upper", "count", "confidence", "accuracy"]


@dataclass
class Collection:
    """Everything the report needs, as tables."""

    runs: pd.DataFrame  # one row per run: run, config columns, summary fields, derived fields
    epochs: pd.DataFrame  # one row per (run, epoch): run, config columns, metrics.csv columns
    mc: pd.DataFrame  # one row per (run, T): run, T, test value; plus "scale" rows (T = NaN)
    config_columns: list[str]
    # (run, why, the status its summary.json gives, or "skipped" when that is unreadable)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)
    # one row per (run, method, bin) of eval_compare.calibration: the reliability diagram's
    reliability: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["run", *RELIABILITY_COLUMNS]))


class BrokenRun(Exception):
    """A run dir whose files cannot be used; the message says which file and why."""

    def __init__(self, message: str, status: str = "skipped"):
        super().__init__(message)
        self.status = status


def run_name(run_dir: Path, base: Path) -> str:
    """A short unique name: the path relative to the common base of all paths."""
    rel = os.path.relpath(run_dir, base)
    return run_dir.name if rel == "." else rel


# --- reading one run ----------------------------------------------------------------------
def read_config(run_dir: Path) -> dict:
    path = run_dir / rundir.CONFIG
    if not path.is_file():
        raise BrokenRun("no .hydra/config.yaml (not a dropbench run dir?)")
    try:
        config = rundir.parse_yaml(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise BrokenRun(f".hydra/config.yaml is unreadable ({type(e).__name__})") from e
    if not isinstance(config, dict):
        raise BrokenRun(".hydra/config.yaml is not a mapping")
    return rundir.with_implied_keys(config)


def read_summary(run_dir: Path) -> dict:
    path = run_dir / rundir.SUMMARY
    try:
        summary = json.loads(path.read_text())
    except FileNotFoundError:
        raise BrokenRun("no summary.json") from None
    except (OSError, ValueError) as e:
        raise BrokenRun(f"summary.json is unreadable ({type(e).__name__})") from e
    if not isinstance(summary, dict):
        raise BrokenRun("summary.json is not a JSON object")
    # A newer dropbench's run stops the report (one line) rather than being left out of it:
    # the fix, upgrading, is the same for every run it wrote.
    rundir.check_format(summary, path)
    return summary


def read_metrics(run_dir: Path, summary: dict) -> pd.DataFrame:
    path = run_dir / rundir.METRICS
    if not path.is_file():
        status = summary.get("status", "unknown")
        error = f": {summary['error']}" if summary.get("error") else ""
        raise BrokenRun(f"no metrics.csv: no epoch finished (status {status}{error})", status)
    try:
        metrics = pd.read_csv(path)
    except (OSError, ValueError) as e:  # pandas' parser errors are ValueErrors
        raise BrokenRun(f"metrics.csv is unreadable ({type(e).__name__})") from e
    needed = {"epoch", "train_eval_loss", "val_loss"}
    if metrics.empty or not needed <= set(metrics.columns):
        raise BrokenRun(f"metrics.csv lacks rows or the columns {sorted(needed)}")
    return metrics


def metric_of(summary: dict, metrics: pd.DataFrame) -> str:
    """`acc` or `ppl`: from the summary, else from the val_<m> column metrics.csv has."""
    if summary.get("metric"):
        return summary["metric"]
    names = [c[4:] for c in metrics.columns if c.startswith("val_") and c != "val_loss"]
    if not names:
        raise BrokenRun("metrics.csv has no val_<metric> column")
    return names[0]


def validated_on_training_data(runs: pd.DataFrame) -> pd.Series:
    """Per run: whether its validation split is its training data."""
    if "val_is" not in runs:
        return pd.Series(False, index=runs.index)
    return runs["val_is"].eq(rundir.VAL_IS_TRAIN)


def gap(worse_side: float, better_side: float, metric: str) -> float:
    """How much worse validation is than train-eval: positive means overfitting."""
    if metric in HIGHER_IS_BETTER:
        return better_side - worse_side
    return worse_side - better_side


def dropout_is_off(config: dict) -> bool:
    """Scheme `none`, or every dropout rate (dropout.p*, numbers or per-layer lists) is 0."""
    dropout = config.get("dropout") or {}
    if dropout.get("name") == "none":
        return True
    rates = []
    for key, value in dropout.items():
        if not key.startswith("p"):
            continue
        values = value if isinstance(value, list) else [value]
        rates += [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return bool(rates) and all(r == 0 for r in rates)


def derived_fields(summary: dict, metrics: pd.DataFrame, m: str) -> dict:
    """Best epoch and final gap, also for a run still running (no best_* in its summary yet).
    A run whose validation split is its training data has no gap: the two coincide."""
    best_row = metrics.loc[metrics["val_loss"].idxmin()]  # the trainer's rule: lowest val loss
    last = metrics.iloc[-1]
    fields = {
        "metric": m,
        "best_epoch": summary.get("best_epoch") or int(best_row["epoch"]),
        rundir.BEST_VAL_LOSS: summary.get(rundir.BEST_VAL_LOSS, best_row["val_loss"]),
        "epochs_run": summary.get("epochs_run", len(metrics)),
        "wall_s": summary.get("wall_s", metrics["seconds"].sum() if "seconds" in metrics else None),
    }
    if f"val_{m}" in metrics:
        fields[rundir.best_val_key(m)] = summary.get(rundir.best_val_key(m), best_row[f"val_{m}"])
    if summary.get("val_is") == rundir.VAL_IS_TRAIN:
        return fields
    fields[rundir.final_gap_key("loss")] = gap(last["val_loss"], last["train_eval_loss"], "loss")
    if f"val_{m}" in metrics and f"train_eval_{m}" in metrics:
        fields[rundir.final_gap_key(m)] = gap(last[f"val_{m}"], last[f"train_eval_{m}"], m)
    return fields


def built_text(entries: list) -> str:
    """summary.json's `dropout_built` (one record per dropout module) as one line, equal
    neighbours counted: `input standard p=0.2 (units, per example); hidden standard p=0.5 x2
    (...)`. `none` when the model has no dropout module."""
    parts: list[list] = []  # [label, count]
    for e in entries:
        if not isinstance(e, dict):
            continue
        label = (f"{e.get('place')} {e.get('scheme')} p={format_value(e.get('rate'))} "
                 f"({e.get('drops', 'units')}, {e.get('masks')})")
        if parts and parts[-1][0] == label:
            parts[-1][1] += 1
        else:
            parts.append([label, 1])
    return "; ".join(label.replace(" (", f" x{n} (", 1) if n > 1 else label
                     for label, n in parts) or "none"


def summary_fields(summary: dict) -> dict:
    """summary.json as flat columns; the `eval_compare` block is read separately (mc_points)."""
    plain = {k: v for k, v in summary.items() if k != "eval_compare"}
    if isinstance(plain.get("overrides"), list):
        plain["overrides"] = " ".join(map(str, plain["overrides"]))
    if isinstance(plain.get("dropout_built"), list):
        plain["dropout_built"] = built_text(plain["dropout_built"])
    return rundir.flatten(plain, lists_as_text=True)


# --- Monte-Carlo results (`eval_compare` in summary.json, written by eval.compare=true) ----
def mc_points(summary: dict, config: dict, m: str) -> list[dict]:
    """[{"T": 1, "value": ...}, ..., {"T": None, "value": weight-scaling value}] or [].

    Accepted shape (docs/report.md): summary["eval_compare"] holds a list of records with a
    sample count (one of MC_SAMPLE_KEYS) and `test_<m>` (or `<m>`), e.g. "curve"; the weight-scaling
    reference is eval["scale"]["test_<m>"], else the run's own test_<m> when it was evaluated
    by weight scaling (the default).
    """
    block = summary.get("eval_compare")
    if not isinstance(block, dict):
        return []
    points = []
    for value in block.values():
        if not isinstance(value, list):
            continue
        for rec in value:
            if not isinstance(rec, dict):
                continue
            t = next((rec[k] for k in MC_SAMPLE_KEYS if k in rec), None)
            v = rec.get(rundir.test_key(m), rec.get(m))
            if isinstance(t, (int, float)) and isinstance(v, (int, float)):
                points.append({"T": t, "value": v})
    if not points:
        return []
    scale = block.get("scale")
    ref = scale.get(rundir.test_key(m), scale.get(m)) if isinstance(scale, dict) else None
    eval_mode = (config.get("eval") or {}).get("mode", "scale")
    if ref is None and eval_mode == "scale":
        ref = summary.get(rundir.test_key(m))
    if isinstance(ref, (int, float)):
        points.append({"T": None, "value": ref})
    return points


# --- calibration (`eval_compare.calibration`, engine/calibration.py) --------------------------
def calibration_parts(summary: dict) -> tuple[dict, list[dict]]:
    """({test_<score>_<method>: value}, the reliability bins as rows) of one run; empty when
    its summary has no calibration block."""
    block = summary.get("eval_compare")
    block = block.get("calibration") if isinstance(block, dict) else None
    if not isinstance(block, dict):
        return {}, []
    fields, bins = {}, []
    for method in ("scale", "mc"):
        scores = block.get(method)
        if not isinstance(scores, dict):
            continue
        fields.update({f"test_{k}_{method}": scores[k] for k in CALIBRATION_SCORES
                       if isinstance(scores.get(k), (int, float))})
        for i, row in enumerate(scores.get("bins") or []):
            if isinstance(row, dict):
                bins.append({"method": method, "bin": i,
                             **{k: row.get(k) for k in RELIABILITY_COLUMNS[2:]}})
    return fields, bins


# --- everything -----------------------------------------------------------------------------
def read_run(run_dir: Path) -> tuple[dict, dict, pd.DataFrame, list[dict], list[dict]]:
    """(flat config, run fields, metrics, mc points, reliability bins) of one run, or
    BrokenRun."""
    config = read_config(run_dir)
    summary = read_summary(run_dir)
    metrics = read_metrics(run_dir, summary)
    m = metric_of(summary, metrics)
    flat_config = rundir.flatten(config, lists_as_text=True)
    fields = {k: v for k, v in summary_fields(summary).items() if k not in flat_config}
    fields.update(derived_fields(summary, metrics, m))
    fields.setdefault("status", "unknown")
    fields["dropout_off"] = dropout_is_off(config)
    calibration, bins = calibration_parts(summary)
    fields.update(calibration)
    return flat_config, fields, metrics, mc_points(summary, config, m), bins


def is_setting(key: str) -> bool:
    """Whether a config key may define a configuration (not the seed, not bookkeeping)."""
    return (key != "seed" and rundir.tells_results_apart(key)
            and not key.startswith(NOT_A_SETTING_PREFIXES))


@dataclass
class ReadRun:
    """One run dir as read_run gives it, before the runs become tables."""

    name: str
    path: Path
    config: dict  # flat
    fields: dict
    metrics: pd.DataFrame
    points: list[dict]
    bins: list[dict]

    def job(self) -> tuple:
        """Runs with equal jobs are one job: the same parent dir (a sweep dir), and equal
        values of every key that can change results (the seed included)."""
        values = tuple(sorted((k, format_value(v)) for k, v in self.config.items()
                              if rundir.tells_results_apart(k)))
        return str(self.path.resolve().parent), values

    def progress(self) -> tuple:
        return rundir.progress_rank(self.fields.get("status"), self.fields.get("epochs_run"))


def once_each(read: list[ReadRun]) -> tuple[list[ReadRun], list[tuple[str, str, str]]]:
    """(the runs, each job once, in their order; a skipped entry for each other dir of a job)."""
    by_job: dict[tuple, list[ReadRun]] = {}
    for run in read:
        by_job.setdefault(run.job(), []).append(run)
    dropped = []
    for same in by_job.values():
        kept = max(same, key=ReadRun.progress)  # the first dir among equals
        for other in (run for run in same if run is not kept):
            keys = sorted(k for k in other.config.keys() | kept.config.keys()
                          if other.config.get(k) != kept.config.get(k))
            why = (f"the same job as {kept.name} (its config differs only in "
                   f"{', '.join(keys) or 'nothing'}); counted once")
            log.warning("left out run %s: %s", other.name, why)
            dropped.append((other.name, why, DUPLICATE))
    left_out = {name for name, *_ in dropped}
    return [run for run in read if run.name not in left_out], dropped


def collect(paths) -> Collection:
    """Read every run under `paths`, each job once; broken ones are skipped with a warning
    naming them."""
    paths = [Path(p) for p in paths]
    run_dirs = find_run_dirs(paths)
    base = Path(os.path.commonpath([p.resolve() for p in paths]))
    read, skipped = [], []
    for run_dir in run_dirs:
        name = run_name(run_dir.resolve(), base)
        try:
            read.append(ReadRun(name, run_dir, *read_run(run_dir)))
        except BrokenRun as e:
            log.warning("skipped run %s: %s", name, e)
            skipped.append((name, str(e), e.status))
    read, duplicates = once_each(read)
    skipped += duplicates
    runs, epochs, mc, bins, config_columns = [], [], [], [], {}
    for run in read:
        config_columns.update(dict.fromkeys(run.config))
        runs.append({"run": run.name, "path": str(run.path.resolve()), **run.config,
                     **run.fields})
        epochs.append(run.metrics.assign(run=run.name, **run.config))
        mc += [{"run": run.name, **p} for p in run.points]
        bins += [{"run": run.name, **b} for b in run.bins]
    if not runs:
        where = ", ".join(map(str, paths))
        detail = f" ({len(skipped)} unreadable, see the warnings above)" if skipped else ""
        raise DropbenchError(f"no runs found under {where}{detail}; give a run dir or a sweep "
                             f"dir made by `dropbench train`")
    return Collection(
        runs=pd.DataFrame(runs),
        epochs=pd.concat(epochs, ignore_index=True),
        mc=pd.DataFrame(mc, columns=["run", "T", "value"]),
        config_columns=list(config_columns),
        skipped=skipped,
        reliability=pd.DataFrame(bins, columns=["run", *RELIABILITY_COLUMNS]),
    )


# --- grouping ---------------------------------------------------------------------------------
def varying_settings(runs: pd.DataFrame, config_columns: list[str]) -> list[str]:
    """Config columns whose value differs between runs (seed and bookkeeping excluded)."""
    settings = [c for c in config_columns if is_setting(c)]
    return [c for c in settings if runs[c].map(format_value).nunique() > 1]


def sort_key(value):
    """Numbers in numeric order before anything else, then text in alphabetical order."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value):
        return (0, value, "")
    return (1, 0, format_value(value))


def assign_groups(col: Collection, by: list[str]) -> list[str]:
    """Add a `group` label column (one per configuration) to runs, epochs, mc and
    reliability; return the
    labels in display order (by the `by` values, numbers numerically)."""
    unknown = [c for c in by if c not in col.runs.columns]
    if unknown:
        choices = ", ".join(c for c in col.config_columns if not c.startswith("hydra."))
        raise DropbenchError(f"--by {','.join(unknown)}: no such config key in these runs; "
                             f"choose from: {choices}")
    runs = col.runs

    runs["group"] = [", ".join(f"{c}={format_value(row[c])}" for c in by) or "all runs"
                     for _, row in runs.iterrows()]
    off = runs.groupby("group")["dropout_off"].all()
    for group in off[off].index:  # say it plainly where a configuration has no dropout at all
        if "=none" not in group:
            runs.loc[runs["group"] == group, "group"] = f"{group} (no dropout)"
    order = sorted(runs.index, key=lambda i: tuple(sort_key(runs.at[i, c]) for c in by))
    groups = list(dict.fromkeys(runs.loc[order, "group"]))
    to_group = dict(zip(runs["run"], runs["group"], strict=True))
    col.epochs["group"] = col.epochs["run"].map(to_group)
    col.mc["group"] = col.mc["run"].map(to_group)
    col.reliability["group"] = col.reliability["run"].map(to_group)
    return groups
