"""The hyperparameter view: a parallel-coordinates figure, one line per run across one axis
per varying config key, coloured by the run's best validation metric (e.g. an Optuna search
over dropout.p, dropout.p_input and optim.lr)."""

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from dropbench import rundir
from dropbench.report.collect import HIGHER_IS_BETTER, format_value, sort_key
from dropbench.report.plots import STYLE, metric_label, metric_scale, new_figure, title

LOG_SPAN = 20.0  # a positive numeric key spanning this factor or more gets a log axis


def axis_positions(values: pd.Series) -> tuple[pd.Series, list[float], list[str], str]:
    """(each run's height in [0, 1], tick heights, tick labels, scale) for one key's axis:
    numbers linearly (or log when they span a factor of 20 or more), anything else as evenly spaced
    categories in the report's sort order."""
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().all() and not values.map(lambda v: isinstance(v, bool)).any():
        low, high = numeric.min(), numeric.max()
        use_log = low > 0 and high / low >= LOG_SPAN
        transform = np.log10 if use_log else (lambda v: v)
        t_low, t_high = transform(low), transform(high)
        span = (t_high - t_low) or 1.0
        heights = (transform(numeric) - t_low) / span
        ticks = sorted(set(numeric))
        if len(ticks) > 5:  # ends and middle only: five labels per axis at most
            ticks = [low, ticks[len(ticks) // 2], high]
        positions = [(transform(t) - t_low) / span for t in ticks]
        if t_high == t_low:
            heights, positions = heights * 0 + 0.5, [0.5]
        return heights, positions, [f"{t:.3g}" for t in ticks], \
            "log" if use_log else "linear"
    labels = sorted(values.map(format_value).unique(), key=lambda s: sort_key(s))
    step = 1.0 / max(1, len(labels) - 1)
    heights = values.map(format_value).map(lambda s: labels.index(s) * step)
    if len(labels) == 1:
        heights = heights * 0 + 0.5
    return heights, [i * step if len(labels) > 1 else 0.5 for i in range(len(labels))], labels, \
        "categories"


def parallel_coordinates(runs: pd.DataFrame, keys: list[str], m: str) -> Figure:
    """One axis per key plus the best validation metric; one line per run with a score."""
    with matplotlib.rc_context(STYLE):
        return draw(runs, keys, m)


def draw(runs: pd.DataFrame, keys: list[str], m: str) -> Figure:
    column = rundir.best_val_key(m)
    runs = runs[pd.to_numeric(runs[column], errors="coerce").notna()]
    score = pd.to_numeric(runs[column]) * metric_scale(m)
    fig, axes = new_figure(1, width=max(5.5, 1.6 * (len(keys) + 1)), height=3.8)
    ax = axes[0, 0]
    cmap = matplotlib.colormaps["viridis" if m in HIGHER_IS_BETTER else "viridis_r"]
    norm = Normalize(score.min(), score.max() if score.max() > score.min() else score.min() + 1)
    columns = [axis_positions(runs[k]) for k in keys]
    columns.append(axis_positions(score))
    heights = np.column_stack([c[0].to_numpy(float) for c in columns])  # (runs, axes)
    order = np.argsort(score.to_numpy() * (1 if m in HIGHER_IS_BETTER else -1))
    x = np.arange(len(columns))
    for i in order:  # the best runs drawn last, on top
        ax.plot(x, heights[i], color=cmap(norm(score.iloc[i])), alpha=0.8, linewidth=1.2,
                marker="o", markersize=3)
    names = [*keys, metric_label(m, "best val")]
    for i, (_, ticks, labels, scale) in enumerate(columns):
        ax.axvline(i, color="0.3", linewidth=0.8)
        for tick, label in zip(ticks, labels, strict=True):
            ax.text(i + 0.03, tick, label, fontsize=7, va="center")
        if scale == "log":
            names[i] += "\n(log scale)"
    ax.set_xticks(x, names, fontsize=8)
    ax.set_yticks([])
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlim(-0.1, len(columns) - 0.6)
    ax.grid(False)
    ax.spines[["left", "bottom"]].set_visible(False)
    fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax,
                 label=metric_label(m, "validation at best epoch"))
    title(fig, f"Hyperparameters of {len(runs)} runs, coloured by the validation "
               f"{metric_label(m).split(' (')[0]} at the best epoch")
    return fig


def has_scores(runs: pd.DataFrame, m: str) -> bool:
    column = rundir.best_val_key(m)
    return column in runs and pd.to_numeric(runs[column], errors="coerce").notna().any()
