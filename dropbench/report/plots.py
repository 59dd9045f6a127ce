"""The report's figures, each a function from tables to a matplotlib Figure.

Figures are built with `matplotlib.figure.Figure` (rendered by Agg for PNG), never pyplot, so
the report leaves the caller's backend and global figure list alone. Every line differs from
its neighbours by marker or line style as well as colour, and colours run dark to light
(viridis), so a greyscale print still tells them apart.

Layout rules every figure keeps: the figure is sized from its number of panels (wrapped into
rows), legends sit outside the axes, titles are wrapped to the figure's width, ticks are plain
numbers (a log axis only where the data span more than a decade), and a y axis is never
narrower than the seeds' noise (see `pad_to_noise`).
"""

import textwrap

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import (
    FuncFormatter,
    LogLocator,
    MaxNLocator,
    NullFormatter,
    ScalarFormatter,
)

from dropbench import rundir, units
from dropbench.report.collect import format_value, sort_key
from dropbench.report.labels import configuration_labels

STYLE = {
    "font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "legend.fontsize": 8,
    "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
    "lines.linewidth": 1.5, "lines.markersize": 5, "axes.formatter.useoffset": False,
}
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p"]
LINESTYLES = ["-", "--", "-.", ":"]
# Splits inside one panel: told apart by line style and marker first, colour second.
SPLITS = {
    # in training mode: with the configuration's dropout, if it has any
    "train": dict(label="train (training mode)", color="0.55", linestyle=":", marker=None),
    "train_eval": dict(label="train-eval", color="#1f5fa0", linestyle="--", marker="s"),
    "val": dict(label="validation", color="#c0392b", linestyle="-", marker="o"),
}
LOSS_LABEL = units.loss_label("acc")  # a classifier's; other tasks: units.loss_label(m)
ONE_LINE = "all runs"  # the rate sweep's line when no setting but the rate varies
CHARS_PER_INCH = 11  # of 9-point text: where titles wrap
DECADE = 10.0  # a log axis only for data spanning more than this factor
SINGLE_SEED_SPAN = 0.02  # no spread known (one seed): the y axis spans >= 2 % of the level
NOISE_SPAN = 4.0  # with a spread: the y axis spans >= 4 sample stds


def metric_label(m: str, what: str = "") -> str:
    name = "error (%)" if m == "error" else units.label(m)
    return f"{what} {name}".strip()


def test_label(runs: pd.DataFrame) -> str:
    """Which weights the test scores are of: the last epoch's where every run tested its last
    epoch and some run's best val epoch came earlier (summary.json `tested_epoch`: a
    regression follows its protocol), else the best val epoch's (where best and last are one
    epoch for every run, both are true, and the best is the classifiers' rule)."""
    if not {"tested_epoch", "epochs_run", "best_epoch"} <= set(runs) or not len(runs):
        return "test (at best val)"
    tested, last, best = (pd.to_numeric(runs[c], errors="coerce")
                          for c in ("tested_epoch", "epochs_run", "best_epoch"))
    if (tested == last).all() and (tested != best).any():
        return "test (last epoch)"
    return "test (at best val)"


def within_percent(ax, axis: str = "y") -> None:
    """Keep a percentage axis inside 0-100: matplotlib widens a range around values that are
    all equal by 5 % either way, past 100 % for accuracies near it."""
    low, high = ax.get_ylim() if axis == "y" else ax.get_xlim()
    limits = (max(low, 0.0), min(high, 100.0))
    if limits != (low, high):
        (ax.set_ylim if axis == "y" else ax.set_xlim)(*limits)


# extra test scores a sweep figure shows when the runs have them: (summary key, label)
EXTRA_PANELS = (("test_mc_ll", "test MC log-likelihood (nats per point)"),)


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
    for ax in axes.flat:
        plain_ticks(ax.yaxis)
        plain_ticks(ax.xaxis)
    return fig, axes


def plain_ticks(axis) -> None:
    """0.25, 5.5, 250: never an offset, never scientific notation."""
    formatter = ScalarFormatter(useOffset=False)
    formatter.set_scientific(False)
    axis.set_major_formatter(formatter)


def wrap(text: str, inches: float) -> str:
    return "\n".join(textwrap.wrap(text, max(12, int(inches * CHARS_PER_INCH))))


def fitted_ylabel(ax, text: str) -> str:
    """An axis's y label wrapped onto as many lines as the panel's height needs (a
    regression's "loss (MSE of the standardised target), log scale" is longer than a panel
    is tall)."""
    return wrap(text, ax.get_position().height * ax.figure.get_figheight())


def title(fig: Figure, text: str) -> None:
    fig.suptitle(wrap(text, fig.get_figwidth()), fontsize=9)


def legend_below(fig: Figure, handles: list) -> None:
    """One legend under the panels, as many columns as its longest label allows."""
    longest = max((len(h.get_label()) for h in handles), default=1)
    ncols = max(1, min(len(handles), int(fig.get_figwidth() / (0.08 * longest + 0.7))))
    with matplotlib.rc_context(STYLE):
        fig.legend(handles=handles, loc="outside lower center", ncols=ncols, frameon=False)


def log_axis_if_wide(ax, values) -> bool:
    """A log y axis where the positive values span more than a decade, with plain labels
    (0.01, 0.1, 1); the axis label says so."""
    values = pd.to_numeric(pd.Series(np.ravel(values)), errors="coerce").dropna()
    if values.empty or (values <= 0).any() or values.max() / values.min() <= DECADE:
        return False
    ax.set_yscale("log")
    span = values.max() / values.min()
    # 1-2-5 labels up to two and a half decades: decades alone can leave a panel two labels
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0,) if span > 300 else (1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylabel(fitted_ylabel(ax, f"{ax.get_ylabel()}, log scale".replace("\n", " ")))
    return True


def pad_to_noise(ax, level: float, spread: float) -> None:
    """Widen the y range so it is at least NOISE_SPAN seed stds (or, with a single seed, 2 % of
    the level): a difference inside the noise then looks small, as it is."""
    spread = spread if np.isfinite(spread) and spread > 0 else 0.0
    need = NOISE_SPAN * spread if spread else SINGLE_SEED_SPAN * abs(level)
    low, high = ax.get_ylim()
    if high - low < need:
        middle = (low + high) / 2
        ax.set_ylim(middle - need / 2, middle + need / 2)


def every(n_points: int) -> int:
    return max(1, n_points // 10)  # about ten markers per line, however long the run


def mean_curves(epochs: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Mean, min and max over seeds per (group, epoch): columns <c>, <c>_min, <c>_max."""
    columns = [c for c in columns if c in epochs]
    grouped = epochs.groupby(["group", "epoch"])[columns]
    spread = grouped.min().add_suffix("_min").join(grouped.max().add_suffix("_max"))
    return grouped.mean().join(spread).reset_index()


def epoch_axis(ax) -> None:
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))


# --- 1. overfitting curves ------------------------------------------------------------------
def without_dropout(runs: pd.DataFrame, groups: list[str],
                    names: dict[str, str] | None = None) -> list[str]:
    """The configurations without dropout, the plainest first when named: the one whose name
    sets the fewest other keys (`none` before `none max_norm=1`), so a figure's reference is
    the run without dropout or any other regulariser where there is one. `names`: the full
    descriptions (Labels.full), not numbers."""
    off = [g for g in groups if runs.loc[runs["group"] == g, "dropout_off"].all()]
    return sorted(off, key=lambda g: len(names[g].split())) if names else off


def overfitting_groups(runs: pd.DataFrame, groups: list[str], limit: int = 4,
                       names: dict[str, str] | None = None) -> list[str]:
    """All groups when few; else the no-dropout ones (the plainest two) plus the best (lowest
    val loss) others."""
    if len(groups) <= limit:
        return groups
    off = without_dropout(runs, groups, names)[:2]
    best = runs.groupby("group")[rundir.BEST_VAL_LOSS].mean().sort_values().index
    chosen = off + [g for g in best if g not in off][: limit - len(off)]
    return [g for g in groups if g in chosen]


def overfitting_curves(epochs: pd.DataFrame, groups: list[str], m: str,
                       names: dict[str, str] | None = None) -> Figure:
    """Train-eval (dashed) vs validation (solid), loss and metric per epoch, one colour and
    marker per group, the seeds' range shaded: without dropout the two lines part, with
    dropout they stay together."""
    names = names or {g: g for g in groups}
    fig, axes = new_figure(2, width=4.4, height=3.4)
    curves = mean_curves(epochs, ["train_eval_loss", "val_loss", f"train_eval_{m}", f"val_{m}"])
    styles = group_styles(groups)
    for ax, (quantity, ylabel, scale) in zip(axes[0], [
        ("loss", units.loss_label(m), 1.0), (m, metric_label(m), metric_scale(m))
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
                ax.fill_between(c["epoch"], c[f"{column}_min"] * scale,
                                c[f"{column}_max"] * scale, color=styles[g]["color"],
                                alpha=0.12, linewidth=0)
        ax.set(xlabel="epoch", ylabel=fitted_ylabel(ax, ylabel))
        epoch_axis(ax)
    log_axis_if_wide(axes[0, 0], curves[["train_eval_loss", "val_loss"]])
    if m != "acc":
        log_axis_if_wide(axes[0, 1], curves[[c for c in (f"train_eval_{m}", f"val_{m}")
                                             if c in curves]])
    handles = [Line2D([], [], color=s["color"], marker=s["marker"], linestyle="-",
                      label=names[g]) for g, s in styles.items()]
    handles += [Line2D([], [], color="0.3", linestyle=SPLITS[k]["linestyle"],
                       label=SPLITS[k]["label"]) for k in ("train_eval", "val")]
    legend_below(fig, handles)
    title(fig, "Overfitting: train-eval vs. validation (mean over seeds, their range shaded)")
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


def rate_lines(runs: pd.DataFrame, rate_col: str, by: list[str]) -> tuple[pd.Series, dict]:
    """(each run's line, {line: its short name}): a line is one combination of the `by`
    values other than the rate."""
    others = [c for c in by if c != rate_col]
    if not others:
        return pd.Series(ONE_LINE, index=runs.index), {ONE_LINE: ONE_LINE}
    line = runs.apply(lambda r: ", ".join(f"{c}={format_value(r[c])}" for c in others), axis=1)
    order = sorted(runs.index, key=lambda i: tuple(sort_key(runs.at[i, c]) for c in others))
    labels = configuration_labels(runs.assign(_line=line), others, column="_line",
                                  order=list(dict.fromkeys(line[order])), fallback=ONE_LINE)
    names = labels.full  # a few lines: their legend may take the full names
    return line, names


def is_rate_sweep(runs: pd.DataFrame, rate_col: str, by: list[str]) -> bool:
    """Some line has two or more rates: otherwise each line is one point, and the
    configurations compare better side by side (by_configuration)."""
    line, _ = rate_lines(runs, rate_col, by)
    return bool((runs[rate_col].map(format_value).groupby(line).nunique() > 1).any())


def seed_stats(values: pd.Series, by: pd.Series) -> pd.DataFrame:
    """mean, sample std and n of `values` per value of `by`, sorted by it."""
    return pd.to_numeric(values, errors="coerce").groupby(by).agg(
        ["mean", "std", "count"]).sort_index()


def sweep_figure(runs, rate_col, by, panels, heading) -> Figure:
    """One errorbar line per line label in each panel; panels: [(column, ylabel, scale)]."""
    fig, axes = new_figure(len(panels), width=4.2, height=3.4)
    x, tick_labels = rate_positions(runs[rate_col])
    line, names = rate_lines(runs, rate_col, by)
    data = runs.assign(_x=x, _line=line)
    lines = list(names)
    styles = group_styles(lines)
    for ax, (column, ylabel, scale) in zip(axes[0], panels, strict=True):
        if column not in data or data[column].isna().all():
            ax.text(0.5, 0.5, f"no {column} values yet", ha="center", transform=ax.transAxes)
        else:
            spread, level = [], []
            for i, name in enumerate(lines):
                sub = data[data["_line"] == name]
                stats = seed_stats(sub[column] * scale, sub["_x"])
                shift = offset(i, len(lines), stats.index)
                ax.errorbar(stats.index + shift, stats["mean"], yerr=stats["std"].fillna(0.0),
                            capsize=3, label=names[name], **styles[name])
                spread += list(stats["std"].dropna())
                level += list(stats["mean"].dropna())
            pad_to_noise(ax, float(np.mean(level)) if level else 0.0,
                         max(spread) if spread else 0.0)
            if scale == metric_scale("acc"):
                within_percent(ax)
        ax.set(xlabel=f"dropout rate {rate_col.split('.', 1)[-1]} (drop probability)",
               ylabel=ylabel)
        if tick_labels is not None:
            ax.set_xticks(range(len(tick_labels)), tick_labels)
        else:
            ax.set_xticks(sorted(set(x)))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.tick_params(axis="x", labelrotation=45 if len(set(x)) > 6 else 0)
    if lines != [ONE_LINE]:
        legend_below(fig, [Line2D([], [], label=names[n], **styles[n]) for n in lines])
    title(fig, heading)
    return fig


def offset(i: int, n: int, positions) -> float:
    """A small sideways shift per line so error bars at the same rate do not hide each other."""
    if n < 2 or len(positions) < 2:
        return 0.0
    step = np.min(np.diff(np.sort(np.asarray(positions, dtype=float))))
    return (i - (n - 1) / 2) * step * 0.08


def n_seeds(runs: pd.DataFrame) -> str:
    counts = runs.groupby("group").size()
    low, high = int(counts.min()), int(counts.max())
    return f"n = {low}" if low == high else f"n = {low}–{high}"


def rate_sweep(runs: pd.DataFrame, rate_col: str, by: list[str], m: str) -> Figure:
    scale = metric_scale(m)
    panels = [(rundir.best_val_key(m), metric_label(m, "validation at best epoch"), scale),
              (rundir.test_key(m), metric_label(m, test_label(runs)), scale)]
    panels += [(column, label, 1.0) for column, label in EXTRA_PANELS
               if column in runs and runs[column].notna().any()]
    return sweep_figure(runs, rate_col, by, panels,
                        f"Rate sweep: mean over seeds ({n_seeds(runs)}), error bars ± 1 sample "
                        f"std (not a CI)")


def gap_vs_rate(runs: pd.DataFrame, rate_col: str, by: list[str], m: str) -> Figure:
    metric_gap = ("train-eval − val accuracy (pp)" if m == "acc"
                  else f"val − train-eval {metric_label(m)}")
    panels = [(rundir.final_gap_key("loss"),
               f"gap: val − train-eval loss ({units.metric_spec(m).loss_unit})", 1.0),
              (rundir.final_gap_key(m), f"gap: {metric_gap}", metric_scale(m))]
    fig = sweep_figure(runs, rate_col, by, panels,
                       f"Generalisation gap at the last epoch: mean over seeds "
                       f"({n_seeds(runs)}), error bars ± 1 sample std")
    for ax in fig.axes:
        ax.axhline(0.0, color="0.5", linewidth=0.8, linestyle=":")
    return fig


# --- 3b. configurations compared on a categorical axis -----------------------------------------
def by_configuration(runs: pd.DataFrame, groups: list[str], m: str,
                     names: dict[str, str], full: dict[str, str] | None = None) -> Figure:
    """Best validation and test metric per configuration, one row each (a categorical axis):
    every seed as a small dot, mean ± 1 sample std as a bar, and the plainest configuration
    without dropout as a dotted reference line in both panels, its legend entry also giving
    its `full` name where `names` numbers it ("mean of 1 (none)")."""
    scale = metric_scale(m)
    panels = [(rundir.best_val_key(m), metric_label(m, "validation at best epoch")),
              (rundir.test_key(m), metric_label(m, test_label(runs)))]
    longest = max(len(names[g]) for g in groups)
    fig, axes = new_figure(2, width=3.2 + 0.035 * longest,
                           height=1.3 + 0.32 * len(groups), sharey=True)
    rows = np.arange(len(groups))[::-1]  # the first configuration on top
    off = without_dropout(runs, groups, full or names)
    for ax, (column, xlabel) in zip(axes[0], panels, strict=True):
        values = pd.to_numeric(runs[column], errors="coerce") * scale if column in runs \
            else pd.Series(np.nan, index=runs.index)
        for y, g in zip(rows, groups, strict=True):
            own = values[runs["group"] == g].dropna()
            ax.plot(own, np.full(len(own), y), "o", color="0.6", markersize=3, zorder=2)
            if len(own):
                ax.errorbar(own.mean(), y, xerr=own.std() if len(own) > 1 else 0.0,
                            fmt="D", color="#1f5fa0", capsize=3, zorder=3)
        if off and values[runs["group"] == off[0]].notna().any():
            ax.axvline(values[runs["group"] == off[0]].mean(), color="#c0392b",
                       linestyle=":", linewidth=1)
        ax.set_xlabel(xlabel)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
        if scale == metric_scale("acc"):
            within_percent(ax, "x")
        ax.grid(axis="y", visible=False)
    axes[0, 0].set_yticks(rows, [names[g] for g in groups])
    axes[0, 0].set_ylim(-0.7, len(groups) - 0.3)
    handles = [Line2D([], [], color="0.6", marker="o", linestyle="", markersize=3,
                      label="one seed"),
               Line2D([], [], color="#1f5fa0", marker="D", label="mean ± 1 sample std")]
    if off:
        reference = names[off[0]]
        if full and full[off[0]] != reference:
            reference += f" ({full[off[0]]})"
        handles.append(Line2D([], [], color="#c0392b", linestyle=":",
                              label=f"mean of {reference}"))
    legend_below(fig, handles)
    title(fig, f"Configurations compared: every seed and their mean ({n_seeds(runs)})")
    return fig


# --- 4. curves grid ---------------------------------------------------------------------------
def curves_grid(epochs: pd.DataFrame, groups: list[str],
                names: dict[str, str] | None = None, m: str = "acc") -> Figure:
    """One panel per group: train (dropout on), train-eval and validation loss, mean over
    seeds with the seeds' range shaded (a range stays positive on the log axis, unlike
    mean - std), shared axes so the panels compare at a glance."""
    names = names or {g: g for g in groups}
    ncols = min(4, len(groups)) if len(groups) != 5 else 3
    nrows = -(-len(groups) // ncols)
    width = max(3.0, 7.0 / ncols)  # a single panel still leaves room for the title
    fig, axes = new_figure(ncols, nrows, width=width, height=3.0, sharex=True, sharey=True)
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
        ax.set_title(wrap(names[g], width - 0.3), fontsize=8)
        epoch_axis(ax)
    for ax in axes.flat[len(groups):]:
        ax.set_visible(False)
    for col in range(ncols):  # the lowest visible panel of each column carries the x label
        visible = [ax for ax in axes[:, col] if ax.get_visible()]
        visible[-1].set_xlabel("epoch")
        visible[-1].xaxis.set_tick_params(labelbottom=True)
    loss = curves[[c for c in curves if c.endswith("_loss")]]
    wide = log_axis_if_wide(axes[0, 0], loss)  # shared: every panel follows
    fig.supylabel(wrap(units.loss_label(m) + (", log scale" if wide else ""),
                       fig.get_figheight() - 0.4), fontsize=9)
    if wide:
        axes[0, 0].set_ylabel("")
    legend_below(fig, list(axes.flat[0].get_legend_handles_labels()[0]))
    title(fig, "Loss per configuration: mean over seeds, their range shaded")
    return fig


# --- 5. Monte-Carlo samples -------------------------------------------------------------------
def mc_samples(mc: pd.DataFrame, groups: list[str], m: str,
               names: dict[str, str] | None = None) -> Figure:
    """Test error (or perplexity) vs. number of MC samples T, against the weight-scaling value
    of the same configuration drawn as a dotted horizontal line (Srivastava et al. 2014,
    fig. 11)."""
    names = names or {g: g for g in groups}
    fig, axes = new_figure(1, width=5.5, height=3.6)
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
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # 1, 10, 100
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set(xlabel="number of MC samples T (log scale)",
           ylabel="test error (%)" if m == "acc" else metric_label(m, "test"))
    handles = [Line2D([], [], color=s["color"], marker=s["marker"], label=names[g])
               for g, s in styles.items()]
    handles += [Line2D([], [], color="0.3", linestyle="-", label="MC average of T passes"),
                Line2D([], [], color="0.3", linestyle=":", label="weight scaling")]
    legend_below(fig, handles)
    title(fig, "Monte-Carlo dropout vs. weight scaling (mean over seeds)")
    return fig
