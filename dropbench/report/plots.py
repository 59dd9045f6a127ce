"""The report's figures, each a function from tables to a matplotlib Figure.

Figures are built with `matplotlib.figure.Figure` (rendered by Agg for PNG), never pyplot, so
the report leaves the caller's backend and global figure list alone. Every line differs from
its neighbours by marker or line style as well as colour, and colours run dark to light
(viridis), so a greyscale print still tells them apart.
"""

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, ScalarFormatter

from dropbench.report.collect import format_value, sort_key

STYLE = {
    "font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "legend.fontsize": 8,
    "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
    "lines.linewidth": 1.5, "lines.markersize": 5,
}
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">"]
LINESTYLES = ["-", "--", "-.", ":"]
# Splits inside one panel: told apart by line style and marker first, colour second.
SPLITS = {
    "train": dict(label="train (dropout active)", color="0.55", linestyle=":", marker=None),
    "train_eval": dict(label="train-eval", color="#1f5fa0", linestyle="--", marker="s"),
    "val": dict(label="validation", color="#c0392b", linestyle="-", marker="o"),
}
LOSS_LABEL = "loss (cross-entropy, nats)"
ONE_LINE = "all runs"  # the rate sweep's line when no setting but the rate varies


def metric_label(m: str, what: str = "") -> str:
    names = {"acc": "accuracy (%)", "ppl": "perplexity", "error": "error (%)"}
    return f"{what} {names.get(m, m)}".strip()


def metric_scale(m: str) -> float:
    return 100.0 if m == "acc" else 1.0


def group_styles(groups: list[str]) -> dict[str, dict]:
    colours = matplotlib.colormaps["viridis"](np.linspace(0.0, 0.8, max(len(groups), 1)))
    return {g: dict(color=colours[i], marker=MARKERS[i % len(MARKERS)],
                    linestyle=LINESTYLES[i % len(LINESTYLES)]) for i, g in enumerate(groups)}


def new_figure(ncols: int, nrows: int = 1, width: float = 4.2, height: float = 3.3, **kw):
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def log_loss_axis(ax, values: pd.DataFrame) -> None:
    """Loss on a log axis: the first epochs' large loss would squash the gap that matters."""
    if (values.dropna() > 0).all().all():
        ax.set_yscale("log")
        ax.set_ylabel(f"{LOSS_LABEL}, log scale")


def every(n_points: int) -> int:
    return max(1, n_points // 10)  # about ten markers per line, however long the run


def mean_curves(epochs: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Mean, min and max over seeds per (group, epoch): columns <c>, <c>_min, <c>_max."""
    columns = [c for c in columns if c in epochs]
    grouped = epochs.groupby(["group", "epoch"])[columns]
    spread = grouped.min().add_suffix("_min").join(grouped.max().add_suffix("_max"))
    return grouped.mean().join(spread).reset_index()


# --- 1. overfitting curves ------------------------------------------------------------------
def overfitting_groups(runs: pd.DataFrame, groups: list[str], limit: int = 4) -> list[str]:
    """All groups when few; else the no-dropout ones plus the best (lowest val loss) others."""
    if len(groups) <= limit:
        return groups
    off = [g for g in groups if runs.loc[runs["group"] == g, "dropout_off"].all()][:2]
    best = runs.groupby("group")["best_val_loss"].mean().sort_values().index
    chosen = off + [g for g in best if g not in off][: limit - len(off)]
    return [g for g in groups if g in chosen]


def overfitting_curves(epochs: pd.DataFrame, groups: list[str], m: str) -> Figure:
    """Train-eval (dashed) vs validation (solid), loss and metric per epoch, one colour and
    marker per group: without dropout the two lines part, with dropout they stay together."""
    fig, axes = new_figure(2, width=4.6)
    curves = mean_curves(epochs, ["train_eval_loss", "val_loss", f"train_eval_{m}", f"val_{m}"])
    styles = group_styles(groups)
    for ax, (quantity, ylabel, scale) in zip(axes[0], [
        ("loss", LOSS_LABEL, 1.0), (m, metric_label(m), metric_scale(m))
    ], strict=True):
        for g in groups:
            c = curves[curves["group"] == g]
            for split in ("train_eval", "val"):
                column = f"{split}_{quantity}"
                if column not in c:
                    continue
                ax.plot(c["epoch"], c[column] * scale, color=styles[g]["color"],
                        marker=styles[g]["marker"], markevery=every(len(c)),
                        linestyle=SPLITS[split]["linestyle"])
        ax.set(xlabel="epoch", ylabel=ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    log_loss_axis(axes[0, 0], curves[["train_eval_loss", "val_loss"]])
    handles = [Line2D([], [], color=s["color"], marker=s["marker"], linestyle="-", label=g)
               for g, s in styles.items()]
    handles += [Line2D([], [], color="0.3", linestyle=SPLITS[k]["linestyle"],
                       label=SPLITS[k]["label"]) for k in ("train_eval", "val")]
    axes[0, 1].legend(handles=handles, loc="best")
    fig.suptitle("Overfitting: train-eval vs. validation (mean over seeds)")
    return fig


# --- 2 and 3. rate sweep and generalisation gap vs. p -------------------------------------------
def rate_positions(values: pd.Series) -> tuple[pd.Series, list | None]:
    """x positions for the rate axis: the rates themselves when all are numbers, else evenly
    spaced categories (per-layer lists such as [0.2, 0.5]) with their labels."""
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().all():
        return numeric, None
    labels = sorted(values.map(format_value).unique())
    return values.map(format_value).map(labels.index), labels


def rate_lines(runs: pd.DataFrame, rate_col: str, by: list[str]) -> pd.Series:
    """The label of the line each run belongs to: its `by` values other than the rate."""
    others = [c for c in by if c != rate_col]
    if not others:
        return pd.Series(ONE_LINE, index=runs.index)
    return runs.apply(lambda r: ", ".join(f"{c}={format_value(r[c])}" for c in others), axis=1)


def sweep_figure(runs, rate_col, by, panels, title) -> Figure:
    """One errorbar line per line label in each panel; panels: [(column, ylabel, scale)]."""
    fig, axes = new_figure(len(panels))
    x, tick_labels = rate_positions(runs[rate_col])
    data = runs.assign(_x=x, _line=rate_lines(runs, rate_col, by))
    order = sorted(data.index, key=lambda i: tuple(sort_key(data.at[i, c]) for c in by))
    lines = list(dict.fromkeys(data.loc[order, "_line"]))
    styles = group_styles(lines)
    for ax, (column, ylabel, scale) in zip(axes[0], panels, strict=True):
        if column not in data or data[column].isna().all():
            ax.text(0.5, 0.5, f"no {column} values yet", ha="center", transform=ax.transAxes)
        else:
            for line in lines:
                sub = data[data["_line"] == line]
                stats = (pd.to_numeric(sub[column], errors="coerce") * scale).groupby(
                    sub["_x"]).agg(["mean", "std"]).sort_index()
                ax.errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0.0),
                            capsize=3, label=line, **styles[line])
            if len(lines) > 1 or lines[0] != ONE_LINE:
                ax.legend(loc="best")
        ax.set(xlabel=f"dropout rate {rate_col} (drop probability)", ylabel=ylabel)
        if tick_labels is not None:
            ax.set_xticks(range(len(tick_labels)), tick_labels)
    fig.suptitle(title)
    return fig


def rate_sweep(runs: pd.DataFrame, rate_col: str, by: list[str], m: str) -> Figure:
    scale = metric_scale(m)
    panels = [(f"best_val_{m}", metric_label(m, "best validation"), scale),
              (f"test_{m}", metric_label(m, "test (at best val)"), scale)]
    return sweep_figure(runs, rate_col, by, panels,
                        "Rate sweep: mean over seeds, error bars ± 1 sample std (not a CI)")


def gap_vs_rate(runs: pd.DataFrame, rate_col: str, by: list[str], m: str) -> Figure:
    metric_gap = ("train-eval − val accuracy (pp)" if m == "acc"
                  else f"val − train-eval {metric_label(m)}")
    panels = [("final_gap_loss", "gap: val − train-eval loss (nats)", 1.0),
              (f"final_gap_{m}", f"gap: {metric_gap}", metric_scale(m))]
    fig = sweep_figure(runs, rate_col, by, panels,
                       "Generalisation gap at the last epoch: mean over seeds, "
                       "error bars ± 1 sample std")
    for ax in fig.axes:
        ax.axhline(0.0, color="0.5", linewidth=0.8, linestyle=":")
    return fig


# --- 4. curves grid ---------------------------------------------------------------------------
def curves_grid(epochs: pd.DataFrame, groups: list[str]) -> Figure:
    """One panel per group: train (dropout on), train-eval and validation loss, mean over
    seeds with the seeds' range shaded (a range stays positive on the log axis, unlike
    mean - std), shared axes so the panels compare at a glance."""
    ncols = min(4, len(groups))
    nrows = -(-len(groups) // ncols)
    fig, axes = new_figure(ncols, nrows, width=3.3, height=2.7, sharex=True, sharey=True)
    curves = mean_curves(epochs, [f"{s}_loss" for s in SPLITS])
    for ax, g in zip(axes.flat, groups, strict=False):
        c = curves[curves["group"] == g]
        for split, style in SPLITS.items():
            column = f"{split}_loss"
            if column not in c:
                continue
            ax.plot(c["epoch"], c[column], markevery=every(len(c)), **style)
            ax.fill_between(c["epoch"], c[f"{column}_min"], c[f"{column}_max"],
                            color=style["color"], alpha=0.15, linewidth=0)
        ax.set_title(g, fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes.flat[len(groups):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
    for ax in axes[:, 0]:
        ax.set_ylabel(LOSS_LABEL)
        log_loss_axis(ax, curves[[c for c in curves if c.endswith("_loss")]])
    fig.legend(*axes.flat[0].get_legend_handles_labels(), loc="outside lower center", ncols=3)
    fig.suptitle("Loss curves per configuration (mean over seeds, range shaded)")
    return fig


# --- 5. Monte-Carlo samples -------------------------------------------------------------------
def mc_samples(mc: pd.DataFrame, groups: list[str], m: str) -> Figure:
    """Test error (or perplexity) vs. number of MC samples T, against the weight-scaling value
    of the same configuration drawn as a dotted horizontal line (Srivastava et al. 2014,
    fig. 11)."""
    fig, axes = new_figure(1, width=5.5)
    ax = axes[0, 0]
    to_error = (lambda v: 100.0 * (1.0 - v)) if m == "acc" else (lambda v: v)
    present = [g for g in groups if g in set(mc["group"])]
    styles = group_styles(present)
    for g in present:
        sub = mc[mc["group"] == g]
        curve = sub[sub["T"].notna()].groupby("T")["value"].mean().sort_index()
        ax.plot(curve.index, to_error(curve), color=styles[g]["color"],
                marker=styles[g]["marker"], linestyle="-")
        scale = sub.loc[sub["T"].isna(), "value"]
        if len(scale):
            ax.axhline(to_error(scale.mean()), color=styles[g]["color"], linestyle=":")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())  # 1, 10, 100 rather than 10^0, 10^1, 10^2
    ax.set(xlabel="number of MC samples T (log scale)",
           ylabel="test error (%)" if m == "acc" else metric_label(m, "test"))
    handles = [Line2D([], [], color=s["color"], marker=s["marker"], label=g)
               for g, s in styles.items()]
    handles += [Line2D([], [], color="0.3", linestyle="-", label="MC average of T passes"),
                Line2D([], [], color="0.3", linestyle=":", label="weight scaling")]
    ax.legend(handles=handles, loc="best")
    fig.suptitle("Monte-Carlo dropout vs. weight scaling")
    return fig
