"""How a metric reads in text meant for people: accuracy in percent, perplexity and losses as
plain numbers. The train log, `dropbench status`, the sweep's progress lines and the report's
tables all use these; the files meant for programs (summary.json, metrics.csv, summary.csv)
keep accuracy as a fraction (docs/run-dir.md).
"""

import math

PERCENT = {"acc"}  # metrics that are fractions in the files and percentages when shown


def shown(metric: str | None, value) -> str:
    """`93.80 %` for an accuracy of 0.938, `85.21` for a perplexity; `–` for no value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if metric in PERCENT:
        return f"{100 * value:.2f} %"
    return f"{value:.2f}"


def at_best_epoch(metric: str | None) -> str:
    """The name of the validation metric at the best epoch. The best epoch is the one with the
    lowest validation loss, so this value need not be the highest accuracy of the run."""
    return f"val {metric} at best epoch" if metric else "val at best epoch"
