"""dropbench: a command-line experiment runner for dropout research."""

__version__ = "0.1.0"


class DropbenchError(Exception):
    """A problem the user can fix: the CLI prints it as one line and exits non-zero."""
