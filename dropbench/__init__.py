"""dropbench: a command-line experiment runner for dropout research."""

from dropbench.errors import DropbenchError
from dropbench.version import __version__

__all__ = ["DropbenchError", "__version__", "load_metrics", "load_runs"]


def load_runs(*paths):
    """One row per run under `paths` as a pandas DataFrame; see `dropbench.api.load_runs`."""
    from dropbench.api import load_runs as load  # pandas loads on first use, not on import

    return load(*paths)


def load_metrics(path):
    """The per-epoch metrics.csv of one run dir as a DataFrame; see `dropbench.api`."""
    from dropbench.api import load_metrics as load

    return load(path)
