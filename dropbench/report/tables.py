"""Tables: one row per configuration with seeds aggregated (mean, sample std, n), and the
paper-vs-ours comparison for runs made from a paper preset.

summary.csv keeps raw numbers (accuracy as a fraction, like summary.json); summary.md is for
reading and pasting: mean ± std with accuracies and errors in percent.
"""

import pandas as pd

from dropbench import rundir
from dropbench.report.collect import format_value

# summary.json scores a task writes besides its headline metric, shown when the runs have
# them: (column, markdown header, decimals); a regression's (engine/regress.py)
EXTRA_SCORES = (
    ("test_ll", "test ll", 3),
    ("test_mc_rmse", "test MC rmse", 4),
    ("test_mc_ll", "test MC ll", 3),
)


def quantities(m: str, columns=()) -> list[tuple[str, str, float, int]]:
    """(column, markdown header, scale, decimals) of each aggregated number; `columns`: those
    the runs have, for the EXTRA_SCORES."""
    pct = 100.0 if m == "acc" else 1.0
    unit = " (%)" if m == "acc" else ""
    gap_unit = " (pp)" if m == "acc" else ""
    digits = 4 if m == "rmse" else 2  # an RMSE is in the target's unit, often well below 1
    extra = [(c, header, 1.0, d) for c, header, d in EXTRA_SCORES if c in columns]
    return [
        ("best_epoch", "best epoch", 1.0, 1),
        (rundir.BEST_VAL_LOSS, "best val loss", 1.0, 4),
        (rundir.best_val_key(m), f"val {m} at best epoch{unit}", pct, digits),  # lowest val loss
        (rundir.TEST_LOSS, "test loss", 1.0, 4),
        (rundir.test_key(m), f"test {m}{unit}", pct, digits),
        *extra,
        (rundir.final_gap_key("loss"), "final gap loss", 1.0, 4),
        (rundir.final_gap_key(m), f"final gap {m}{gap_unit}", pct, digits),
        ("epochs_run", "epochs", 1.0, 1),
        ("wall_s", "wall time (s)", 1.0, 1),
    ]


def status_counts(statuses: pd.Series) -> str:
    """"completed 2, failed 1": every status named, so failures are never averaged away."""
    counts = statuses.fillna("unknown").value_counts()
    return ", ".join(f"{status} {n}" for status, n in counts.sort_index().items())


def summary_table(runs: pd.DataFrame, groups: list[str], by: list[str], m: str) -> pd.DataFrame:
    """One row per group, in display order: the `by` values, n, status, <q>_mean and <q>_std."""
    rows = []
    for group in groups:
        sub = runs[runs["group"] == group]
        row = {c: format_value(sub[c].iloc[0]) for c in by}
        row.update(configuration=group, n=len(sub), status=status_counts(sub["status"]))
        for column, *_ in quantities(m, runs.columns):
            values = pd.to_numeric(sub.get(column, pd.Series(dtype=float)), errors="coerce")
            row[f"{column}_mean"] = values.mean()
            row[f"{column}_std"] = values.std()  # sample std (ddof=1): NaN for one seed
            row[f"{column}_count"] = int(values.count())
        rows.append(row)
    return pd.DataFrame(rows)


def mean_std(mean: float, std: float, count: int, n: int, scale: float, decimals: int) -> str:
    if count == 0:
        return "–"
    text = f"{mean * scale:.{decimals}f}"
    if count > 1:
        text += f" ± {std * scale:.{decimals}f}"
    if count < n:  # say so when some runs have no value yet (running, failed)
        text += f" ({count} of {n})"
    return text


def summary_markdown_frame(table: pd.DataFrame, by: list[str], m: str) -> pd.DataFrame:
    """The summary table as display strings."""
    shown = table[by].copy() if by else pd.DataFrame({"configuration": table["configuration"]})
    shown["n"] = table["n"]
    present = {c for c, *_ in EXTRA_SCORES if f"{c}_mean" in table}
    for column, header, scale, decimals in quantities(m, present):
        shown[header] = [
            mean_std(r[f"{column}_mean"], r[f"{column}_std"], r[f"{column}_count"], r["n"],
                     scale, decimals)
            for _, r in table.iterrows()
        ]
    shown["status"] = table["status"]
    return shown


def summary_csv_frame(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=[c for c in table.columns if c.endswith("_count")])


# --- calibration (eval.compare=true classifiers) -------------------------------------------
CALIBRATION = [("acc", "acc (%)", 100.0, 2), ("nll", "NLL", 1.0, 4), ("brier", "Brier", 1.0, 4),
               ("ece", "ECE (%)", 100.0, 2)]


def calibration_table(runs: pd.DataFrame, groups: list[str]) -> pd.DataFrame:
    """One display row per configuration whose runs recorded calibration: mean ± std over
    seeds of the test accuracy, NLL, Brier score (summed over classes) and 15-bin ECE, for
    weight scaling and for MC dropout; empty when no run has them."""
    methods = [(m, name) for m, name in (("scale", "scale"), ("mc", "MC"))
               if f"test_ece_{m}" in runs]
    rows = []
    for group in groups:
        sub = runs[runs["group"] == group]
        if not methods or sub[f"test_ece_{methods[0][0]}"].isna().all():
            continue
        row = {"configuration": group, "n": len(sub)}
        for method, name in methods:
            for key, header, scale, decimals in CALIBRATION:
                values = pd.to_numeric(sub.get(f"test_{key}_{method}"), errors="coerce")
                row[f"{name} {header}"] = mean_std(values.mean(), values.std(),
                                                   int(values.count()), len(sub), scale,
                                                   decimals)
        rows.append(row)
    return pd.DataFrame(rows)


# --- paper vs ours ----------------------------------------------------------------------------
def dropout_built_table(runs: pd.DataFrame, groups: list[str]) -> pd.DataFrame:
    """The dropout each configuration's runs were built with (summary.json `dropout_built`),
    one row per configuration and distinct build; empty when no run recorded it."""
    if "dropout_built" not in runs:
        return pd.DataFrame()
    rows = []
    for group in groups:
        built = runs.loc[runs["group"] == group, "dropout_built"].dropna().unique()
        rows += [{"configuration": group, "dropout built": b} for b in built]
    return pd.DataFrame(rows)


def paper_metric(runs: pd.DataFrame, name: str) -> pd.Series | None:
    """A run's value for the paper's metric name. Names ending in _acc or _error are in percent
    (as papers quote them): `test_error` is 100 * (1 - test_acc)."""
    if name.endswith("_error"):
        acc = name[: -len("_error")] + "_acc"
        return None if acc not in runs else 100.0 * (1.0 - pd.to_numeric(runs[acc]))
    if name not in runs:
        return None
    values = pd.to_numeric(runs[name], errors="coerce")
    return 100.0 * values if name.endswith("_acc") else values


# (block, the run's key prefix, how a reason names the wanted value): paper.<block>.<rest>
# must equal the run's <prefix><rest> (paper.model.hidden: model.hidden; paper.protocol.
# trainer.epochs: trainer.epochs)
PAPER_KEYS = (("dataset", "dataset.", "the paper used"), ("model", "model.", "the paper used"),
              ("protocol", "", "the preset's protocol sets"))


def paper_columns(runs: pd.DataFrame, prefix: str) -> list[str]:
    return [c for c in runs.columns if c.startswith(prefix)]


def not_comparable(run: pd.Series, runs: pd.DataFrame) -> str | None:
    """Why `run` (one row of `runs`) cannot be compared with its preset's paper, or None when
    its dataset and model are the paper's, it kept the preset's protocol and its scheme has a
    row (dropbench/paper.py)."""
    reasons = []
    for block, run_prefix, source in PAPER_KEYS:
        prefix = f"paper.{block}."
        for column in paper_columns(runs, prefix):
            key = run_prefix + column[len(prefix):]
            want = run[column]
            if not isinstance(want, str) and pd.isna(want):
                continue  # a key another paper names, not this run's
            have = run[key] if key in run else None
            if format_value(have) != format_value(want):
                reasons.append(f"{key}={format_value(have)}; {source} {format_value(want)}")
    scheme = format_value(run.get("dropout.name"))
    if pd.isna(run.get(f"paper.rows.{scheme}.value", float("nan"))):
        rows = sorted({c.split(".")[2] for c in paper_columns(runs, "paper.rows.")
                       if c.endswith(".value") and pd.notna(run[c])})
        reasons.append(f"the paper has no dropout={scheme} row (its rows: {', '.join(rows)})")
    return "; ".join(reasons) or None


def single_number_row(first: pd.Series, sub: pd.DataFrame, group: str) -> dict:
    """A run dir whose `paper:` block is one number (`ref`, `table`, `metric`, `value`) with no
    dataset, model or rows: set beside ours, and said to be unchecked."""
    ours = paper_metric(sub, str(first["paper.metric"]))
    ours = ours.dropna() if ours is not None else pd.Series(dtype=float)
    value = float(first["paper.value"])
    return {"reference": first["paper.ref"], "table": first.get("paper.table", ""),
            "metric": first["paper.metric"], "configuration": group, "paper": value,
            "ours_mean": ours.mean(), "ours_std": ours.std(), "n": int(ours.count()),
            "difference": ours.mean() - value,
            "comparison": "not checked: the run's paper block names no dataset, model or rows"}


def paper_table(runs: pd.DataFrame, groups: list[str]) -> pd.DataFrame:
    """One row per configuration of the runs made from a paper preset (config `paper.ref`), in
    display order: the paper's row for the configuration's scheme next to ours when the dataset,
    model and scheme match the paper's; otherwise the paper's value stays empty and
    `comparison` says why not (dropbench/paper.py)."""
    if "paper.ref" not in runs:
        return pd.DataFrame()
    runs = runs[runs["paper.ref"].notna() & (runs["paper.ref"] != "")]
    rows = []
    for (_, group), sub in runs.groupby(["paper.ref", "group"], sort=False):
        first = sub.iloc[0]
        scheme = format_value(first.get("dropout.name"))
        row = f"paper.rows.{scheme}."
        if pd.notna(first.get("paper.value", float("nan"))):
            rows.append(single_number_row(first, sub, group))
            continue
        reason = not_comparable(first, runs)
        metrics = [first[c] for c in paper_columns(runs, "paper.rows.")
                   if c.endswith(".metric") and isinstance(first[c], str)]
        metric = first[row + "metric"] if reason is None else (metrics or [""])[0]
        ours = paper_metric(sub, str(metric))
        ours = ours.dropna() if ours is not None else pd.Series(dtype=float)
        value = float(first[row + "value"]) if reason is None else float("nan")
        ref = first.get(row + "ref") if reason is None else None
        rows.append({
            "reference": ref if isinstance(ref, str) and ref else first["paper.ref"],
            "table": first[row + "table"] if reason is None else "",
            "metric": metric, "configuration": group,
            "paper": value, "ours_mean": ours.mean(), "ours_std": ours.std(),
            "n": int(ours.count()), "difference": ours.mean() - value,
            "comparison": "comparable" if reason is None else f"not comparable: {reason}",
        })
    rows.sort(key=lambda r: groups.index(r["configuration"]))
    return pd.DataFrame(rows)


def paper_markdown_frame(table: pd.DataFrame) -> pd.DataFrame:
    shown = table[["reference", "table", "metric", "configuration"]].copy()
    shown["paper"] = table["paper"].map(lambda v: "–" if pd.isna(v) else f"{v:g}")
    shown["ours"] = [mean_std(r.ours_mean, r.ours_std, r.n, r.n, 1.0, 2)
                     for r in table.itertuples()]
    shown["n"] = table["n"]
    shown["ours − paper"] = table["difference"].map(lambda v: "–" if pd.isna(v) else f"{v:+.2f}")
    shown["comparison"] = table["comparison"]
    return shown


def markdown(table: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table (pandas' to_markdown needs the optional tabulate)."""
    def cell(v) -> str:
        return format_value(v).replace("|", "\\|")

    lines = ["| " + " | ".join(map(cell, table.columns)) + " |",
             "|" + "|".join("---" for _ in table.columns) + "|"]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"
