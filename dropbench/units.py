"""How a metric reads in text meant for people: accuracy in percent, perplexity and losses as
plain numbers. The train log, `dropbench status` and `diff`, the sweep's progress lines and
the report's tables all use these; the files meant for programs (summary.json, metrics.csv,
summary.csv) keep accuracy as a fraction (docs/run-dir.md).
"""

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """A metric the tasks score: how it is named, which way is better, how it is shown."""

    label: str  # for axes and table headers
    higher_is_better: bool
    percent: bool = False  # a fraction in the files, a percentage when shown
    format: str = ".2f"  # of the shown number
    loss: str = "cross-entropy, nats"  # the training loss of the tasks scored by this metric
    loss_unit: str = "nats"  # of a difference of two such losses


METRICS = {
    "acc": Metric("accuracy (%)", higher_is_better=True, percent=True),
    "ppl": Metric("perplexity", higher_is_better=False),
    "rmse": Metric("RMSE", higher_is_better=False, format=".4g",  # the target's own unit
                   loss="MSE of the standardised target", loss_unit="standardised MSE"),
    "ll": Metric("log-likelihood (nats per point)", higher_is_better=True, format=".3f",
                 loss="MSE of the standardised target", loss_unit="standardised MSE"),
}
PERCENT = {name for name, m in METRICS.items() if m.percent}
HIGHER_IS_BETTER = {name for name, m in METRICS.items() if m.higher_is_better}


def label(metric: str) -> str:
    return METRICS[metric].label if metric in METRICS else metric


def metric_spec(metric: str | None) -> Metric:
    """The declared metric, or a classifier's accuracy for a name no task declares."""
    return METRICS.get(metric or "acc", METRICS["acc"])


def loss_label(metric: str | None) -> str:
    """The axis label of the training loss of a task whose headline metric is `metric`."""
    return f"loss ({metric_spec(metric).loss})"


def shown(metric: str | None, value) -> str:
    """`93.80 %` for an accuracy of 0.938, `85.21` for a perplexity; `–` for no value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if metric in PERCENT:
        return f"{100 * value:.2f} %"
    return format(value, METRICS[metric].format if metric in METRICS else ".2f")


def at_best_epoch(metric: str | None) -> str:
    """The name of the validation metric at the best epoch. The best epoch is the one with the
    lowest validation loss, so this value need not be the highest accuracy of the run."""
    return f"val {metric} at best epoch" if metric else "val at best epoch"
