"""`write_report(paths)`: run dirs -> runs.csv, figures, summary tables and report.html."""

import io
import os
from pathlib import Path

import pandas as pd

from dropbench.errors import DropbenchError
from dropbench.report import calibration_plots, hparams, html, plots, stats, tables
from dropbench.report.collect import (
    Collection,
    assign_groups,
    collect,
    validated_on_training_data,
    varying_settings,
)
from dropbench.report.labels import Labels, configuration_labels, differing

FORMATS = ("png", "svg", "pdf")
HPARAM_MIN_GROUPS = 4  # with fewer, the other figures already show every configuration
CAPTIONS = {
    "overfitting_curves": "Train-eval (dashed) and validation (solid) loss and metric per epoch, "
    "mean over seeds. Where the two lines part, the model overfits.",
    "rate_sweep": "Best validation and test metric against the dropout rate: mean over seeds; "
    "error bars are ± 1 sample standard deviation over seeds, not a confidence interval (the "
    "table against the baseline gives 95 % intervals).",
    "by_configuration": "Best validation and test metric of every configuration: each seed "
    "as a dot, the mean ± 1 sample standard deviation as a bar; the dotted line is the "
    "configuration without dropout that sets the fewest other keys.",
    "gap_vs_rate": "Generalisation gap at the last epoch against the dropout rate: how much worse "
    "validation is than train-eval (positive = overfitting).",
    "curves_grid": "Loss per epoch for every configuration: train in training mode, with the "
    "configuration's dropout if it has any (dotted), train-eval (dashed) and validation "
    "(solid), mean over seeds, their range shaded.",
    "parallel_coordinates": "One line per run across the config keys that vary, ending at its "
    "best validation metric; the colour is that metric too, so the settings of the best runs "
    "stand out (numeric axes span each key's range, on a log scale when it spans a factor of "
    "20 or more).",
    "mc_samples": "Test error against the number of Monte-Carlo samples T (solid) and the "
    "weight-scaling value of the same configuration (dotted).",
    "reliability": "Reliability diagram of the test split (eval.compare=true): the examples "
    "binned by confidence (the largest predicted probability) into 15 equal-width bins; bars "
    "give each bin's accuracy, the red tick its mean confidence, the dashed diagonal perfect "
    "calibration, the lower panel the number of examples per bin (log scale; hatched: empty). "
    "Weight scaling and MC dropout side by side, seeds pooled.",
}


def parse_formats(text: str) -> list[str]:
    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise DropbenchError(f"--format {text!r}: use a comma-separated list of "
                             f"{', '.join(FORMATS)}")
    return formats


def rate_column(by: list[str]) -> str | None:
    """The grouping key plotted on the rate axis: dropout.p, else another dropout.p* key."""
    rates = [c for c in by if c.startswith("dropout.") and c.rsplit(".", 1)[1].startswith("p")]
    return "dropout.p" if "dropout.p" in rates else (rates[0] if rates else None)


def figure_labels(runs: pd.DataFrame, groups: list[str], by: list[str]) -> Labels:
    """The names figures give the configurations (see report/labels.py)."""
    return configuration_labels(runs, by, order=groups)


def overfitting_configurations(runs: pd.DataFrame, groups: list[str],
                               full: dict[str, str]) -> tuple[list[str], list[str]]:
    """(the configurations the overfitting curves show, those with a held-out validation
    split): a configuration validated on its training data has no overfitting curve, the
    two coincide. `full`: the configurations' descriptions, which rank the plainest."""
    blind = validated_on_training_data(runs)
    held_out = [g for g in groups if not blind[runs["group"] == g].all()]
    return plots.overfitting_groups(runs[~blind], held_out, names=full), held_out


def build_figures(col: Collection, groups: list[str], by: list[str], m: str):
    """({name: Figure}, notes on figures left out, the configuration labels) for the runs
    scored with metric m."""
    runs = col.runs[col.runs["metric"] == m]
    epochs = col.epochs[col.epochs["run"].isin(runs["run"])]
    groups = [g for g in groups if g in set(runs["group"])]
    labels = figure_labels(runs, groups, by)
    names = labels.names
    figures, notes = {}, []
    shown, held_out = overfitting_configurations(runs, groups, labels.full)
    blind = validated_on_training_data(runs)
    if shown:
        figures["overfitting_curves"] = plots.overfitting_curves(epochs, shown, m, names)
    if len(held_out) < len(groups):
        notes.append(f"{len(groups) - len(held_out)} of {len(groups)} configurations are "
                     f"validated on their own training data (summary.json val_is=train: a UCI "
                     f"protocol refit, or dataset.validation=false), so their train-eval and "
                     f"validation curves coincide and their \"best val\" scores are training "
                     f"scores: the overfitting curves, the gap and the hyperparameter view "
                     f"leave them out.")
    if len(shown) < len(held_out):
        notes.append(f"Overfitting curves show {len(shown)} of {len(held_out)} configurations "
                     f"(no-dropout ones and the lowest validation loss); the grid shows all.")
    rate = rate_column(by)
    if rate and plots.is_rate_sweep(runs, rate, by):
        figures["rate_sweep"] = plots.rate_sweep(runs, rate, by, m)
        if held_out:
            figures["gap_vs_rate"] = plots.gap_vs_rate(runs[~blind], rate, by, m)
    else:
        if len(groups) > 1:
            figures["by_configuration"] = plots.by_configuration(runs, groups, m, names,
                                                                 labels.full)
        notes.append("Rate sweep and gap vs. rate left out: no dropout rate (dropout.p*) takes "
                     "two or more values within one line of configurations (choose the "
                     "grouping with --by).")
    figures["curves_grid"] = plots.curves_grid(epochs, groups, names, m)
    # keys that differ where they apply (a key only some schemes have is "n/a" elsewhere)
    # coloured by the best val metric: only runs whose val is held out compare on it
    scored = runs[~blind]
    keys = differing(scored, varying_settings(scored, col.config_columns))
    if len(keys) >= 2 and len(held_out) >= HPARAM_MIN_GROUPS and hparams.has_scores(scored, m):
        figures["parallel_coordinates"] = hparams.parallel_coordinates(scored, keys, m)
    else:
        notes.append(f"Hyperparameter view (parallel coordinates) left out: it needs two or "
                     f"more config keys that vary between {HPARAM_MIN_GROUPS} or more "
                     f"configurations.")
    mc = col.mc[col.mc["run"].isin(runs["run"])]
    if mc["T"].notna().any():
        figures["mc_samples"] = plots.mc_samples(mc, groups, m, names)
    else:
        notes.append("MC samples vs. weight scaling left out: no run has Monte-Carlo results "
                     "(an `eval_compare` block in summary.json, from eval.compare=true).")
    bins = col.reliability[col.reliability["run"].isin(runs["run"])]
    if len(bins):
        figures["reliability"] = calibration_plots.reliability_diagram(bins, groups, names)
        if bins["group"].nunique() > calibration_plots.MAX_CONFIGURATIONS:
            notes.append(f"The reliability diagram shows the first "
                         f"{calibration_plots.MAX_CONFIGURATIONS} configurations; the "
                         f"calibration table lists all.")
    return figures, notes, labels


def clear_old_figures(out: Path) -> None:
    """A figure a previous report made but this one does not (no MC data now) must not linger."""
    for name in CAPTIONS:
        for path in out.glob(f"{name}*"):
            if path.suffix.lstrip(".") in FORMATS:
                path.unlink()


def save_figures(figures: dict, out: Path, formats: list[str], suffix: str) -> dict[str, bytes]:
    """Write every figure in every format; return the PNG bytes for the HTML page."""
    pngs = {}
    for name, fig in figures.items():
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=150)
        pngs[name] = buf.getvalue()
        for fmt in formats:
            path = out / f"{name}{suffix}.{fmt}"
            if fmt == "png":
                path.write_bytes(pngs[name])
            else:
                fig.savefig(path, format=fmt)
    return pngs


def problems(col: Collection, job_errors: dict[str, str]) -> pd.DataFrame:
    """Runs left out (unreadable) or not completed, so failures are listed, never hidden."""
    rows = [{"run": run, "status": status, "detail": why} for run, why, status in col.skipped]
    unfinished = col.runs[col.runs["status"] != "completed"]
    for _, r in unfinished.iterrows():
        detail = r.get("error") if isinstance(r.get("error"), str) else ""
        rows.append({"run": r["run"], "status": r["status"], "detail": detail})
    for row in rows:  # a job Hydra saw fail: its error says more than "no summary.json"
        if row["run"] in job_errors:
            status = "failed" if row["status"] == "skipped" else row["status"]
            row.update(status=status, detail=job_errors[row["run"]])  # keep "diverged"
    listed = {row["run"] for row in rows}
    rows += [{"run": run, "status": "failed", "detail": err}
             for run, err in job_errors.items() if run not in listed]
    return pd.DataFrame(rows, columns=["run", "status", "detail"])


def runs_table(col: Collection) -> pd.DataFrame:
    """runs.csv: one row per run, its configuration, summary fields and derived fields."""
    first = ["run", "group", "status", *col.config_columns]
    return col.runs[first + [c for c in col.runs.columns if c not in first]]


def epochs_table(col: Collection) -> pd.DataFrame:
    """epochs.csv: one row per (run, epoch): the run's metrics.csv with its group and config."""
    first = ["run", "group", "epoch", *col.config_columns]
    table = col.epochs
    return table[[c for c in first if c in table] + [c for c in table if c not in first]]


def key_parts(labels: Labels) -> tuple[list[str], pd.DataFrame]:
    """The table that explains numbered configuration names (markdown lines, frame)."""
    frame = pd.DataFrame(labels.key, columns=["#", "configuration"])
    return ["Figures number the configurations:\n", tables.markdown(frame)], frame


def named_configurations(shown: pd.DataFrame, groups: pd.Series, by: list[str],
                         names: dict[str, str]) -> pd.DataFrame:
    """A display table with one short `configuration` column (what differs, as in the
    figures) in place of one column per grouping key; summary.csv keeps those columns."""
    shown = shown.drop(columns=[c for c in [*by, "configuration"] if c in shown])
    shown.insert(0, "configuration", groups.map(names).to_numpy())
    return shown


def significance_parts(runs, groups, by, m, baseline,
                       names=None) -> tuple[pd.DataFrame, list, list]:
    """(the comparison table, its markdown lines, its HTML fragments) for metric m;
    `names` gives the configurations' display names."""
    table = stats.significance(runs, groups, by, m, rate_column(by), baseline)
    if table.empty:
        note = ("No comparison against a baseline: no configuration without dropout, and no "
                "rate-sweep line with two or more rates; choose one with --baseline KEY=VALUE.")
        return table, [note + "\n"], [html.paragraph(note, "note")]
    quantity = table["quantity"].iloc[0].replace("_", " ")
    unit = " (pp)" if m == "acc" else ""
    shown = stats.markdown_frame(table, 100.0 if m == "acc" else 1.0, unit)
    if names:
        shown = shown.assign(configuration=shown["configuration"].map(names),
                             baseline=shown["baseline"].map(names))
    text = (f"{quantity}: each configuration minus its baseline, over seeds; 95 % confidence "
            f"interval and two-sided p-value from a t test (paired by seed when both sides "
            f"have the same seeds, else Welch), "
            + (f"Holm-corrected across the {len(table)} comparisons; significant means Holm "
               f"p < 0.05." if len(table) > 1 else "one comparison, so no correction; "
               "significant means p < 0.05."))
    return table, [text + "\n", tables.markdown(shown)], [html.paragraph(text), html.table(shown)]


def with_significance(summary: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """summary.csv gains each configuration's comparison with its baseline."""
    if table.empty:
        return summary
    extra = table.rename(columns={"quantity": "compared", "difference": "diff"})
    extra = extra.rename(columns={"ci_low": "diff_ci_low", "ci_high": "diff_ci_high"})
    extra = extra.drop(columns=["n", "n_baseline"])
    return summary.merge(extra, on="configuration", how="left")


def make_out_dir(out: Path) -> None:
    """The report's dir, made if needed; refused in one line when it cannot be."""
    if out.exists() and not out.is_dir():
        raise DropbenchError(f"--out {out} is a file, not a directory; give a directory for "
                             f"the report (made if missing)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DropbenchError(f"cannot make the report dir {out} ({e.strerror}); pick a "
                             f"writable one with --out DIR") from None


def write_report(paths, out=None, formats=("png",), by=None, job_errors=None,
                 baseline=None) -> Path:
    """Collect the runs under `paths` and write the report into `out` (default PATH/report).
    `baseline` names the configuration every other one is compared with (KEY=VALUE,...)."""
    paths = [Path(p) for p in paths]
    col = collect(paths)
    out = Path(out) if out else common_dir(paths) / "report"
    make_out_dir(out)
    by = list(by) if by else varying_settings(col.runs, col.config_columns)
    groups = assign_groups(col, by)
    names = figure_labels(col.runs, groups, by).full  # what the tables call configurations
    runs_table(col).to_csv(out / "runs.csv", index=False)
    epochs_table(col).to_csv(out / "epochs.csv", index=False)
    clear_old_figures(out)

    metrics = list(dict.fromkeys(col.runs["metric"]))
    # the keys whose values tell the configurations apart (a key only some schemes have is
    # not named for being absent from the others)
    shown_by = differing(col.runs.drop_duplicates("group"), by) or by
    md = ["# dropbench report\n", f"{counted(len(col.runs), 'run')} in "
          f"{counted(len(groups), 'configuration')} "
          f"(grouped by {', '.join(shown_by) or 'nothing: one configuration'}); mean ± sample "
          "std over seeds, n = runs.\n"]
    figure_parts, table_parts, notes = [], [], []
    for m in metrics:
        suffix = f"_{m}" if len(metrics) > 1 else ""
        runs = col.runs[col.runs["metric"] == m]
        present = [g for g in groups if g in set(runs["group"])]
        summary = tables.summary_table(runs, present, by, m)
        sig, sig_md, sig_html = significance_parts(runs, present, by, m, baseline, names)
        with_significance(tables.summary_csv_frame(summary), sig).to_csv(
            out / f"summary{suffix}.csv", index=False)
        shown = tables.summary_markdown_frame(summary, by, m)
        shown = named_configurations(shown, summary["configuration"], by, names)
        md += [f"## Summary per configuration ({m})\n", tables.markdown(shown),
               f"## Against the baseline ({m})\n", *sig_md]
        table_parts += [html.subheading(f"Summary per configuration ({m})"), html.table(shown),
                        html.subheading(f"Against the baseline ({m})"), *sig_html]
        figures, fig_notes, labels = build_figures(col, groups, by, m)
        key = None
        if labels.numbered:
            key_md, key = key_parts(labels)
            md += [f"## Configuration numbers in the figures ({m})\n", *key_md]
        for name, png in save_figures(figures, out, formats, suffix).items():
            figure_parts.append(html.figure(name + suffix, png, CAPTIONS[name], key))
        notes += fig_notes

    paper = tables.paper_table(col.runs, groups)
    if not paper.empty:
        paper.to_csv(out / "paper_vs_ours.csv", index=False)
        shown = tables.paper_markdown_frame(paper.assign(
            configuration=paper["configuration"].map(names)))  # the names the tables use
        md += ["## Paper vs. ours\n", tables.markdown(shown)]
        table_parts += [html.subheading("Paper vs. ours"), html.table(shown)]
    calibration = tables.calibration_table(col.runs, groups)
    if not calibration.empty:
        calibration["configuration"] = calibration["configuration"].map(names)
        text = ("Test-split calibration, mean ± std over seeds: NLL (nats), Brier score "
                "(summed over classes, range 0-2), ECE over 15 equal-width confidence bins "
                "(Guo et al. 2017); scale = weight-scaled network, MC = mean of the "
                "eval.mc_samples passes' probabilities.")
        md += ["## Calibration (test split)\n", text + "\n", tables.markdown(calibration)]
        table_parts += [html.subheading("Calibration (test split)"), html.paragraph(text),
                        html.table(calibration)]
    built = tables.dropout_built_table(col.runs, groups)
    if not built.empty:
        built["configuration"] = built["configuration"].map(names)
        md += ["## Dropout built, per configuration\n", tables.markdown(built)]
        table_parts += [html.subheading("Dropout built, per configuration"), html.table(built)]
    trouble = problems(col, job_errors or {})
    if not trouble.empty:
        md += ["## Runs not completed or not included\n", tables.markdown(trouble)]
    (out / "summary.md").write_text("\n".join(md))

    sections = [("Tables", table_parts), ("Figures", figure_parts)]
    if notes:
        sections.append(("Notes", [html.paragraph(n, "note") for n in notes]))
    if not trouble.empty:
        sections.append(("Runs not completed or not included", [html.table(trouble)]))
    title = f"dropbench report: {', '.join(map(str, paths))}"
    (out / "report.html").write_text(html.page(title, sections), encoding="utf-8")
    return out


def counted(n: int, noun: str) -> str:
    """`1 run`, `2 runs`."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def common_dir(paths: list[Path]) -> Path:
    """Where the report goes by default: the paths' common directory (a run dir itself too)."""
    return Path(os.path.commonpath([str(p.resolve()) for p in paths]))
