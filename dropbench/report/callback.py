"""Hydra callbacks for multiruns: `SweepProgress` prints a line as each job ends;
`SweepReport` writes the sweep's report into `<sweep dir>/report` when it ends.

Registered in conf/config.yaml under `hydra.callbacks.report`; turn it off for one sweep with
`~hydra.callbacks.report`. Hydra's basic sweeper re-raises a failed job's error after the whole
batch has run and then skips `on_multirun_end`, so the report is also written at interpreter
exit when that hook never came: a sweep with failed jobs still gets its report, with the failed
jobs listed. A report error is logged as a warning and never fails the sweep.
"""

import atexit
import logging
import os
import time
from pathlib import Path

from hydra.core.utils import JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode

log = logging.getLogger("dropbench")


# Sweeps whose report is still to be written: the CLI writes them when a failed sweep ends,
# before interpreter shutdown (where starting a thread pool, as plotting may, is refused).
PENDING: list["SweepReport"] = []
STARTED: list[Path] = []  # every sweep dir this process started, for the CLI's last line


def write_pending() -> None:
    for report in list(PENDING):
        report.write()


class SweepReport(Callback):
    def __init__(self, formats="png") -> None:
        self.formats = formats.split(",") if isinstance(formats, str) else list(formats)
        self.sweep_dir: Path | None = None
        self.job_errors: dict[str, str] = {}  # run name (relative to the sweep dir) -> error
        self.running_job: str | None = None  # set while a job runs: still set at exit = killed
        self.jobs_started = 0
        self.done = False

    def on_multirun_start(self, config, **kwargs) -> None:
        self.sweep_dir = Path(str(config.hydra.sweep.dir))
        atexit.register(self.write)
        PENDING.append(self)
        STARTED.append(self.sweep_dir)

    def on_job_start(self, config, **kwargs) -> None:
        self.running_job = str(config.hydra.runtime.output_dir)
        self.jobs_started += 1

    def on_job_end(self, config, job_return, **kwargs) -> None:
        self.running_job = None
        if job_return.status != JobStatus.FAILED or self.sweep_dir is None:
            return
        job_dir = str(job_return.hydra_cfg.hydra.runtime.output_dir)
        name = os.path.relpath(job_dir, self.sweep_dir.resolve())
        # Reading the error through `return_value` would re-raise it: take the stored value.
        error = getattr(job_return, "_return_value", None)
        text = str(error).strip().splitlines()[0] if str(error).strip() else ""
        self.job_errors[name] = f"{type(error).__name__}: {text}"

    def on_multirun_end(self, config, **kwargs) -> None:
        self.write()
        atexit.unregister(self.write)

    def write(self) -> None:
        if self.done or self.sweep_dir is None:
            return
        self.done = True
        if self in PENDING:
            PENDING.remove(self)
        if not self.jobs_started and not self.sweep_dir.is_dir():  # the launcher never ran one
            return
        if self.running_job is not None:  # interrupted mid-job: leave quickly, say how to report
            log.warning("sweep interrupted; for a report of what is there run "
                        "`dropbench report %s`", self.sweep_dir)
            return
        try:
            from dropbench.report.build import parse_formats, write_report

            formats = parse_formats(",".join(map(str, self.formats)))
            out = write_report([self.sweep_dir], formats=formats, job_errors=self.job_errors)
            log.info("sweep report: %s", out / "report.html")
        except (Exception, KeyboardInterrupt) as e:  # the report must never fail the sweep
            log.warning("no sweep report (%s: %s); try `dropbench report %s`",
                        type(e).__name__, e, self.sweep_dir)


class SweepProgress(Callback):
    """One line per finished job: its result, then how far the sweep is and its ETA.

    Counts from the sweep dir's files (dropbench/status.py), not from memory: with a parallel
    launcher each job ends in its own worker process, and the files are what all of them share.
    """

    def on_job_end(self, config, job_return, **kwargs) -> None:
        if job_return.hydra_cfg.hydra.mode != RunMode.MULTIRUN:  # a single run has no sweep
            return
        try:
            from dropbench import status

            sweep_dir = Path(str(config.hydra.sweep.dir))
            job_dir = Path(str(job_return.hydra_cfg.hydra.runtime.output_dir))
            jobs, total = status.sweep_jobs(sweep_dir)
            print(status.job_line(status.read_job(job_dir, sweep_dir, time.time()), jobs,
                                  total), flush=True)
        except Exception as e:  # a progress line is never worth a failed sweep
            log.debug("no progress line (%s: %s)", type(e).__name__, e)
