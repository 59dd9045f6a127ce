"""What a run records of this process's stretch of training, besides its own files.

A session opens when training begins, so a resume has restored and checked its checkpoint
(and the engine has taken the run dir) before anything is written: manifest.json gains the
session, and the tracking loggers start with the epochs already on disk. It ends with the
run's status; a run built without a manifest (a benchmark's) records nothing.
"""

import logging
from pathlib import Path

import torch

from dropbench.engine.manifest import Manifest
from dropbench.errors import DropbenchError
from dropbench.loggers import Sinks

log = logging.getLogger("dropbench")


class Session:
    def __init__(self, manifest: Manifest | None = None, command: tuple[str, ...] = (),
                 data: dict | None = None):
        self.manifest = manifest  # None: nothing is recorded
        self.command = list(command)  # the command line, as manifest.json shows it
        self.data = data  # the fingerprint of the tensors the run trains on
        self.sinks = Sinks()  # no loggers until the session opens
        self.opened = False

    def open(self, cfg, run_dir: Path, device: torch.device, epoch: int,
             rows: list[dict]) -> None:
        """Record the session's start at `epoch` and start the loggers cfg turns on."""
        if self.manifest is None:
            return
        self.manifest.start(self.command, device, epoch, self.data)
        self.opened = True
        self.sinks = Sinks.open(cfg, run_dir, rows)

    def end(self, epoch: int, status: str) -> None:
        """Record the session's end, whatever ended it; a failure to write it (a full disk)
        never hides the run's own error."""
        if not self.opened:  # an earlier session's end is not this one's to write
            return
        try:
            self.manifest.end(epoch, status)
        except DropbenchError as e:
            log.warning("manifest.json not updated: %s", e)

    def close_loggers(self, summary: dict, interrupted: bool = False) -> None:
        self.sinks.close(summary, interrupted=interrupted)
