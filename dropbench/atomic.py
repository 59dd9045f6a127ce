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
    columns: list[str] = []
    for row in rows:  # union of keys, in first-seen order
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, buf.getvalue().encode())
