"""dropbench's version, recorded in every run's manifest and session."""

__version__ = "0.1.0"
