"""Calibration figures: the reliability diagram of the weight-scaled and MC predictives
(from summary.json's `eval_compare.calibration`), and metric-vs-rotation panels for the
dataset-shift study (scripts/shift.py)."""

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, MultipleLocator, NullFormatter

from dropbench.report.plots import group_styles, legend_below, new_figure, title, wrap

METHODS = {"scale": "weight scaling", "mc": "MC dropout"}
MAX_CONFIGURATIONS = 4  # rows of the reliability diagram; more would squeeze the panels
BAR_COLOUR, GAP_COLOUR, EMPTY_COLOUR = "#1f5fa0", "#c0392b", "0.85"


def pooled_bins(bins: pd.DataFrame) -> pd.DataFrame:
    """Per (method, bin): the seeds pooled, count summed, accuracy and confidence weighted by
    count (so a bin is as if all seeds' test examples were one set)."""
    b = bins.assign(correct=bins["accuracy"].fillna(0) * bins["count"],
                    conf_sum=bins["confidence"].fillna(0) * bins["count"])
    pooled = b.groupby(["method", "bin"]).agg(lower=("lower", "first"), upper=("upper", "first"),
                                              count=("count", "sum"), correct=("correct", "sum"),
                                              conf_sum=("conf_sum", "sum")).reset_index()
    n = pooled["count"].where(pooled["count"] > 0)
    return pooled.assign(accuracy=pooled["correct"] / n, confidence=pooled["conf_sum"] / n)


def pooled_ece(pooled: pd.DataFrame) -> float:
    full = pooled[pooled["count"] > 0]
    return float((full["count"] * (full["accuracy"] - full["confidence"]).abs()).sum()
                 / full["count"].sum())


def reliability_diagram(bins: pd.DataFrame, groups: list[str],
                        names: dict[str, str] | None = None) -> Figure:
    """Accuracy per confidence bin (bars) against the diagonal of perfect calibration, with
    the gap to each bin's mean confidence marked, and the number of test examples per bin
    below on a log axis: weight scaling and MC side by side, one pair of rows per
    configuration (the first MAX_CONFIGURATIONS), seeds pooled. Empty bins are hatched."""
    names = names or {g: g for g in groups}
    shown = [g for g in groups if g in set(bins["group"])][:MAX_CONFIGURATIONS]
    methods = [m for m in METHODS if m in set(bins["method"])]
    fig, axes = new_figure(len(methods), nrows=2 * len(shown), width=3.4, height=2.0,
                           gridspec_kw={"height_ratios": [2, 1.2] * len(shown)},
                           sharex=True)
    for row, g in enumerate(shown):
        pooled_all = pooled_bins(bins[bins["group"] == g])
        for col, method in enumerate(methods):
            pooled = pooled_all[pooled_all["method"] == method]
            acc_ax, count_ax = axes[2 * row, col], axes[2 * row + 1, col]
            draw_bins(acc_ax, count_ax, pooled)
            ece = f"ECE\u00a0{100 * pooled_ece(pooled):.1f}\u00a0%"  # no-break: one word
            acc_ax.set_title(wrap(f"{names[g]}: {METHODS[method]}, {ece}", 3.4), fontsize=8)
            if col == 0:
                acc_ax.set_ylabel("accuracy")
                count_ax.set_ylabel("examples")
            if row == len(shown) - 1:
                count_ax.set_xlabel("confidence (max probability)")
    handles = [Patch(color=BAR_COLOUR, label="accuracy in bin"),
               Line2D([], [], color=GAP_COLOUR, marker="_", linestyle="none", markersize=10,
                      label="mean confidence in bin"),
               Line2D([], [], color="0.3", linestyle="--", label="perfect calibration"),
               Patch(facecolor="white", edgecolor="0.5", hatch="///", label="empty bin")]
    legend_below(fig, handles)
    extra = len([g for g in groups if g in set(bins["group"])]) - len(shown)
    more = (f"; {extra} more configuration{'s' if extra > 1 else ''} in the calibration table"
            if extra > 0 else "")
    title(fig, f"Reliability on the test split (15 bins, seeds pooled){more}")
    return fig


def draw_bins(acc_ax, count_ax, pooled: pd.DataFrame) -> None:
    width = float((pooled["upper"] - pooled["lower"]).iloc[0])
    full, empty = pooled[pooled["count"] > 0], pooled[pooled["count"] == 0]
    acc_ax.bar(full["lower"], full["accuracy"], width=width, align="edge", color=BAR_COLOUR,
               edgecolor="white", linewidth=0.5)
    acc_ax.scatter(full["lower"] + width / 2, full["confidence"], marker="_", s=60,
                   color=GAP_COLOUR, zorder=3)
    for ax in (acc_ax, count_ax):
        for lower in empty["lower"]:
            ax.axvspan(lower, lower + width, facecolor="white", edgecolor="0.5", hatch="///",
                       linewidth=0)
    acc_ax.plot([0, 1], [0, 1], color="0.3", linestyle="--", linewidth=1)
    acc_ax.set(xlim=(0, 1), ylim=(0, 1))
    acc_ax.yaxis.set_major_locator(MultipleLocator(0.5))
    count_ax.bar(full["lower"], full["count"], width=width, align="edge", color="0.45",
                 edgecolor="white", linewidth=0.5)
    count_ax.set_yscale("log")
    top = max(10.0, float(pooled["count"].max()) * 3)
    count_ax.set_ylim(0.7, top)
    count_ax.yaxis.set_major_locator(LogLocator(numticks=3, subs=(1.0,)))
    count_ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    count_ax.yaxis.set_minor_formatter(NullFormatter())
    count_ax.xaxis.set_major_locator(MultipleLocator(0.2))
    count_ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


SHIFT_PANELS = [("acc", "accuracy (%)", 100.0), ("nll", "NLL (nats)", 1.0),
                ("ece", "ECE (%)", 100.0), ("entropy", "predictive entropy (nats)", 1.0)]


def shift_panels(rows: pd.DataFrame, models: list[str], heading: str) -> Figure:
    """Accuracy, NLL, ECE and mean predictive entropy against the rotation angle, one line per
    model (column `model`), mean over seeds with the seeds' range shaded."""
    fig, axes = new_figure(2, nrows=2, width=3.6, height=2.6)
    styles = group_styles(models)
    for ax, (metric, label, scale) in zip(axes.flat, SHIFT_PANELS, strict=True):
        for model in models:
            sub = rows[rows["model"] == model].groupby("angle")[metric]
            mean, low, high = (sub.mean() * scale, sub.min() * scale, sub.max() * scale)
            ax.plot(mean.index, mean, color=styles[model]["color"],
                    marker=styles[model]["marker"], linestyle=styles[model]["linestyle"],
                    markersize=4)
            ax.fill_between(mean.index, low, high, color=styles[model]["color"], alpha=0.15,
                            linewidth=0)
        ax.set(xlabel="rotation (degrees)", ylabel=label)
        ax.xaxis.set_major_locator(MultipleLocator(45))
        if metric == "acc":
            ax.set_ylim(0, 100)
        else:  # every metric here is >= 0: the axis starts there, so levels compare honestly
            ax.set_ylim(0, max(float(np.nanmax(rows[metric])) * scale * 1.08, 0.05))
    handles = [Line2D([], [], color=s["color"], marker=s["marker"], linestyle=s["linestyle"],
                      label=m) for m, s in styles.items()]
    legend_below(fig, handles)
    title(fig, heading)
    return fig
