"""The error a user can fix, and how the CLI ends on one: a single line on stderr and a
non-zero exit. Every layer raises DropbenchError, so this module imports nothing of
dropbench's."""

import sys


class DropbenchError(Exception):
    """A problem the user can fix: the CLI prints it as one line and exits non-zero."""


def die(message: str, code: int = 2):
    print(f"dropbench: error: {message}", file=sys.stderr)
    sys.exit(code)
