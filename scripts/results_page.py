"""The results page of scripts/results.py: one `dropbench report` per study, its summary as a
compact table (test error in percent), the chosen figures copied next to the page."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, NullFormatter

from dropbench import rundir
from dropbench.data.mnist_sample import DEFAULT_TRAIN, SAMPLE_VAL_SIZE
from dropbench.report import plots
from dropbench.report.build import figure_labels, overfitting_configurations, write_report
from dropbench.report.collect import assign_groups, collect
from dropbench.report.labels import NO_DROPOUT, configuration_labels
from dropbench.report.tables import markdown
from dropbench.rundir import MAX_NORM_COLUMN, best_val_key, final_gap_key, test_key

DATA_NOTE = (
    f"**Data.** Every number on this page comes from the 10,000-digit real MNIST sample (the "
    f"official MNIST *test* split), not from full MNIST: its first {DEFAULT_TRAIN:,} digits "
    f"serve as the training files, of which `dataset.val_size={SAMPLE_VAL_SIZE}` are held out "
    f"for validation (so {DEFAULT_TRAIN - SAMPLE_VAL_SIZE:,} are trained on), and its last "
    f"{10_000 - DEFAULT_TRAIN:,} digits are the test split. The test error is measured once, "
    f"with the checkpoint of the lowest validation loss. With 7,000 training digits instead of "
    f"60,000, errors are several times the papers' and the absolute values are not comparable "
    f"with theirs; the shapes (orderings, U-shapes, gaps) are what these studies test."
)


def percent(mean: float, std: float, n_values: int) -> str:
    if pd.isna(mean):
        return "–"
    return f"{mean:.2f}" + (f" ± {std:.2f}" if n_values > 1 and not pd.isna(std) else "")


def study_table(summary: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """configuration (named by what differs, as in the report's figures, with the number the
    figures give it when they number them), n, test error (%), best val error (%), final gap
    (pp), best epoch."""
    off = summary["configuration"].astype(str).str.endswith(NO_DROPOUT)
    labels = configuration_labels(summary.assign(dropout_off=off), by, column="configuration")
    shown = pd.DataFrame({"configuration": summary["configuration"].map(labels.full),
                          "n": summary["n"]})
    if labels.numbered:
        shown.insert(0, "#", summary["configuration"].map(labels.names))
    for column, header in ((test_key("acc"), "test error (%)"),
                           (best_val_key("acc"), "val error (%)")):
        shown[header] = [percent(100 * (1 - r[f"{column}_mean"]), 100 * r[f"{column}_std"],
                                 r["n"]) for _, r in summary.iterrows()]
    gap = final_gap_key("acc")
    shown["train-eval − val acc, last epoch (pp)"] = [
        percent(100 * r[f"{gap}_mean"], 100 * r[f"{gap}_std"], r["n"])
        for _, r in summary.iterrows()]
    shown["best epoch"] = summary["best_epoch_mean"].map(lambda v: f"{v:.1f}")
    if "diff" in summary and summary["diff"].notna().any():  # the report's baseline test
        shown["test acc vs. baseline (pp, 95 % CI, Holm p)"] = [
            "" if pd.isna(r["diff"]) else
            f"{100 * r['diff']:+.2f} [{100 * r['diff_ci_low']:+.2f}, "
            f"{100 * r['diff_ci_high']:+.2f}], {r['p_holm']:.2f}"
            for _, r in summary.iterrows()]
    return shown


def small_data_figure(summary: pd.DataFrame, path: Path) -> None:
    small_data_plot(summary).savefig(path, dpi=110)


def small_data_plot(summary: pd.DataFrame):
    """Test error against the number of training digits, with and without dropout: mean over
    seeds with ± 1 sample std error bars, drawn with the report's layout helpers."""
    fig, axes = plots.new_figure(1, width=5.5, height=3.8)
    ax = axes[0, 0]
    names = sorted(summary["dropout.name"].unique(), key=lambda n: n != "none")
    styles = plots.group_styles(names)
    spreads = []
    for name in names:
        rows = summary[summary["dropout.name"] == name].sort_values("dataset.train_subset")
        label = "no dropout" if name == "none" else "dropout (0.5 hidden, 0.2 input)"
        std = 100 * rows["test_acc_std"]
        ax.errorbar(rows["dataset.train_subset"], 100 * (1 - rows["test_acc_mean"]),
                    yerr=std.fillna(0), capsize=3, label=label, **styles[name])
        spreads += list(std.dropna())
    ax.set_xscale("log")  # 250 to 7,000 digits: more than a decade
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(sorted(summary["dataset.train_subset"].unique()))
    ax.set(xlabel="training digits (dataset.train_subset), log scale", ylabel="test error (%)")
    level = float(np.mean(100 * (1 - summary["test_acc_mean"])))
    plots.pad_to_noise(ax, level, max(spreads) if spreads else 0.0)
    plots.legend_below(fig, ax.get_legend_handles_labels()[0])
    plots.title(fig, "10k-digit real MNIST sample, 2,000 test digits: mean over seeds, "
                     "± 1 sample std")
    return fig


def mc_table(study_dir: Path) -> pd.DataFrame:
    """Test error of the MC average of T passes and of weight scaling, one row per run (the
    runs differ only in their seed)."""
    rows = []
    for path in sorted(study_dir.glob("*/*/summary.json")):
        compare = json.loads(path.read_text()).get("eval_compare")
        if not compare:
            continue
        config = rundir.parse_yaml((path.parent / rundir.CONFIG).read_text())
        row = {"seed": config["seed"],
               "weight scaling": f"{100 * compare['scale']['test_error']:.2f}"}
        row.update({f"T={point['samples']}": f"{100 * point['test_error']:.2f}"
                    for point in compare["curve"]})
        rows.append(row)
    return pd.DataFrame(rows).sort_values("seed") if rows else pd.DataFrame()


def numeric_order(summary: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Rows sorted by the `by` columns, numbers as numbers (500 before 2000)."""
    keys = [pd.to_numeric(summary[c], errors="coerce").fillna(0) if c in summary else None
            for c in by]
    frame = summary.assign(**{f"_key{i}": k for i, k in enumerate(keys) if k is not None})
    sort_by = [c for c in frame.columns if c.startswith("_key")] + by
    sort_by = [c for c in dict.fromkeys(sort_by) if c in frame]
    return frame.sort_values(sort_by, kind="stable").drop(
        columns=[c for c in frame.columns if c.startswith("_key")])


def max_norm_note(study_dir: Path) -> str | None:
    """What max-norm did in the study's runs that have it (metrics.csv `max_norm_projected`):
    the weight vectors it projected over each run, per sweep; None when no run has it."""
    totals: dict[str, list[int]] = {}
    for path in sorted(study_dir.glob("*/*/metrics.csv")):
        metrics = pd.read_csv(path)
        if MAX_NORM_COLUMN in metrics:
            totals.setdefault(path.parent.parent.name, []).append(
                int(metrics[MAX_NORM_COLUMN].sum()))
    if not totals:
        return None
    parts = [f"`{sweep}` {', '.join(f'{n:,}' for n in counts)}"
             for sweep, counts in totals.items()]
    never = all(n == 0 for counts in totals.values() for n in counts)
    verdict = (" The constraint never acted: those rows repeat the rows without it." if never
               else "")
    return (f"Weight vectors max-norm projected over each run (metrics.csv "
            f"`{MAX_NORM_COLUMN}`, summed over epochs; one number per seed): "
            f"{'; '.join(parts)}.{verdict}\n")


def study_section(study, work: Path, figures_dir: Path) -> list[str]:
    report = write_report([work / study.name], out=work / study.name / "report", by=study.by)
    summary = pd.read_csv(report / "summary.csv")
    if study.name == "small_data":
        summary = numeric_order(summary, study.by)
    source = (f"*Data: the 10k-digit real MNIST sample (not full MNIST), "
              f"{DEFAULT_TRAIN - SAMPLE_VAL_SIZE:,} train / {SAMPLE_VAL_SIZE:,} val / "
              f"{10_000 - DEFAULT_TRAIN:,} test digits; runs in `{study.name}/` of the work "
              f"folder.*\n")
    lines = [f"## {study.title}\n", study.text + "\n", source,
             markdown(study_table(summary, study.by))]
    note = max_norm_note(work / study.name)
    if note:
        lines.append(note)
    if study.name == "mc":
        lines += ["Test error (%) against the number of MC samples T:\n",
                  markdown(mc_table(work / study.name))]
    shown = []
    for name in study.figures:
        source = report / f"{name}.png"
        if source.is_file():
            shutil.copyfile(source, figures_dir / f"{study.name}-{name}.png")
            shown.append(f"{study.name}-{name}.png")
    if study.name == "small_data":
        small_data_figure(summary, figures_dir / "small_data.png")
        shown.append("small_data.png")
    lines += [f"![{study.title}: {name}](results/{name})\n" for name in shown]
    left_out = curves_left_out(work / study.name, study.by)
    if "overfitting_curves" in study.figures and left_out:
        lines.append(f"*The overfitting curves show at most four configurations (those "
                     f"without dropout, then the lowest validation loss); left out here: "
                     f"{', '.join(left_out)}.*\n")
    return lines


def curves_left_out(study_dir: Path, by: list[str]) -> list[str]:
    """The configurations the report's overfitting curves leave out (it shows four), named
    as in the tables: chosen by the report's own rule, on its own order and names."""
    col = collect([study_dir])
    groups = assign_groups(col, by)
    names = figure_labels(col.runs, groups, by).full  # as the tables name them
    shown, _ = overfitting_configurations(col.runs, groups, names)
    return [names[g] for g in groups if g not in shown]


def write_page(plan, work: Path, out: Path, *, command: str, quick: bool,
               timing: dict) -> Path:
    figures_dir = out / "results"
    shutil.rmtree(figures_dir, ignore_errors=True)
    figures_dir.mkdir(parents=True)
    budget = ("`--quick`: one seed (0), 10 epochs for the MLPs and 6 for LeNet, reduced grids. "
              "That is too short for the nets with dropout, which learn more slowly (their best "
              "epoch is usually the last one) and for the penalties to bite: read these tables "
              "as a smoke test of the studies, and the full run (three seeds, 20 epochs) for "
              "the comparisons" if quick else
              "three seeds (0, 1, 2), the trainer's default 20 epochs")
    lines = [
        "# Results on real digits\n",
        "Generated by `scripts/results.py`; regenerate with the command below, which rewrites "
        "this page and its figures in docs/results/ (`--out DIR` writes them elsewhere):\n",
        f"```bash\n{command} --data-dir PATH/TO/mnist-sample\n```\n",
        DATA_NOTE + "\n",
        f"**Budget.** {budget}; SGD as configured in `conf/optim/sgd.yaml`; one CPU thread "
        f"per run. Training took {timing['wall_s'] / 60:.1f} minutes on a machine with "
        f"{timing['cores']} cores (load average {timing['load_average']} at the end of the "
        f"runs). Tables give the mean ± sample standard deviation over seeds; n is the "
        f"number of runs.\n",
    ]
    for study in plan:
        lines += study_section(study, work, figures_dir)
    page = out / "results.md"
    page.write_text("\n".join(lines))
    return page


def replace_section(study, work: Path, out: Path, *, timing: dict) -> Path:
    """Rewrite one study's section of results.md (`--only`), keeping every other section and
    figure; the section says how long its own runs took."""
    page = out / "results.md"
    text = page.read_text()
    section = study_section(study, work, out / "results")
    section.insert(2, f"*Trained by `python scripts/results.py --only {study.name}` (three "
                      f"seeds, 20 epochs, one thread per run) in {timing['wall_s'] / 60:.1f} "
                      f"minutes on a machine with {timing['cores']} cores (load average "
                      f"{timing['load_average']} at the end).*\n")
    heading = f"## {study.title}\n"
    if heading in text:
        start = text.index(heading)
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + "\n".join(section) + ("" if end < 0 else text[end:])
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(section)
    page.write_text(text)
    return page
