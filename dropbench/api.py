"""The public Python API: run directories as pandas tables, for notebooks and scripts.

    import dropbench
    runs = dropbench.load_runs("multirun/2026-11-22/04-27-39-123456")  # one row per run
    curves = dropbench.load_metrics(runs["path"][0])                      # one row per epoch

Both read files only (the run dir contract in docs/report.md), like `dropbench report`, which
builds its tables from the same functions.
"""

from pathlib import Path

import pandas as pd

from dropbench.errors import DropbenchError
from dropbench.report.collect import BrokenRun, collect, read_metrics, read_summary


def load_runs(*paths) -> pd.DataFrame:
    """One row per run found under `paths` (run dirs or sweep dirs, searched recursively).

    Columns: `run` (name relative to the paths' common folder), `path` (the run dir), the run's
    config flattened to dotted keys (`dropout.p`, `optim.lr`, `seed`, ...), its summary.json
    fields (`status`, `best_val_acc`, `test_acc`, `wall_s`, ...) and derived ones (`metric`,
    `best_epoch`, `final_gap_loss`, `dropout_off`). Unreadable runs are skipped with a warning,
    and so is a second dir of a job in one sweep dir (report/collect.py).
    """
    if not paths:
        raise DropbenchError("load_runs needs at least one run dir or sweep dir")
    return collect(paths).runs


def load_metrics(path) -> pd.DataFrame:
    """The per-epoch table (metrics.csv) of one run: `path` is its run dir or the file itself."""
    path = Path(path)
    run_dir = path.parent if path.name == "metrics.csv" else path
    if not run_dir.is_dir():
        raise DropbenchError(f"{run_dir} is not a run directory")
    try:
        summary = read_summary(run_dir)
    except BrokenRun:
        summary = {}  # the metrics file alone is enough
    try:
        return read_metrics(run_dir, summary)
    except BrokenRun as e:
        raise DropbenchError(f"{run_dir}: {e}") from None
