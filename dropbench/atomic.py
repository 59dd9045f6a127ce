"""Atomic file writes: a killed run never leaves a half-written file behind.

Everything is written to a temp file in the same directory, flushed to disk, then renamed over
the target (rename is atomic on POSIX within one filesystem). Torch-free, so the loggers and
the run-dir readers write through it without importing the engine.
"""

import csv
import io
import json
import os
import tempfile
from pathlib import Path

from dropbench import rundir
from dropbench.errors import DropbenchError

_UMASK = os.umask(0)
os.umask(_UMASK)  # mkstemp makes 0600 files; give them the usual permissions instead


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    try:
        # Only a run dir's own subfolders (.hydra/, checkpoints/) are made here: the run dir
        # itself is made when it is locked, so one that vanished while training is a
        # failure, not a new half dir.
        if not path.parent.is_dir() and (path.parent.parent / rundir.LOCK).is_file():
            path.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except FileNotFoundError:
        raise DropbenchError(f"cannot write {path}: its run dir was deleted or moved while "
                             f"dropbench wrote to it, so the run is lost; train it again (a new "
                             f"hydra.run.dir)") from None
    except OSError as e:
        raise DropbenchError(f"cannot write {path} ({e.strerror}); pick a writable output "
                             f"directory with hydra.run.dir=...") from e
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise DropbenchError(f"cannot write {path} ({e.strerror}); free disk space or pick "
                             f"another output directory with hydra.run.dir=...") from e


def write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, default=str) + "\n").encode())


def write_csv(path: Path, rows: list[dict]) -> None:
    CsvRows().write(path, rows)


class FormattedRows:
    """Each row of a list that grows at its end, formatted once by `format_row`: a row that
    changed since (compared by value) is formatted again, with every row after it."""

    def __init__(self, format_row):
        self.format_row = format_row
        self.done: list[tuple[dict, str]] = []  # (a copy of the row, its text)

    def __call__(self, rows: list[dict]) -> list[str]:
        same = 0
        while same < min(len(rows), len(self.done)) and self.done[same][0] == rows[same]:
            same += 1
        self.done[same:] = [(dict(row), self.format_row(row)) for row in rows[same:]]
        return [text for _, text in self.done]


class CsvRows:
    """Writes a growing list of rows as one CSV file (the union of their keys as columns, in
    first-seen order), atomically, formatting each row once: metrics.csv is written whole
    after every recorded epoch, and formatting every earlier row again made a run's writes
    quadratic in its epochs. A new column formats every row again."""

    def __init__(self):
        self.columns: list[str] = []
        self.lines = FormattedRows(self.line)

    def write(self, path: Path, rows: list[dict]) -> None:
        columns: list[str] = []
        for row in rows:
            columns += [k for k in row if k not in columns]
        if columns != self.columns:
            self.columns, self.lines = columns, FormattedRows(self.line)
        header = self.line({c: c for c in columns})
        atomic_write_bytes(path, (header + "".join(self.lines(rows))).encode())

    def line(self, row: dict) -> str:
        buf = io.StringIO()
        csv.DictWriter(buf, fieldnames=self.columns, lineterminator="\n").writerow(row)
        return buf.getvalue()
