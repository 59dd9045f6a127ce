"""Loggers are sinks: TensorBoard, MLflow and W&B get the same per-epoch rows as metrics.csv.

The run dir stays the source of truth. Sinks run on one background thread, so a slow or
unreachable tracking server never slows training; a sink that fails (missing package, server
down, disk full) warns once, with the fix, and is off for the rest of the run. What a sink
needs to continue after a resume (its TensorBoard dir, MLflow run id, W&B run id) is kept in
`<run dir>/loggers.json`.

The trainer calls `epoch(row)` after each epoch; the engine opens the sinks before training and
closes them with the final summary, whatever ended the run.
"""

import importlib.util
import json
import logging
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path

from dropbench import rundir

log = logging.getLogger("dropbench")

STATE_FILE = "loggers.json"
# logger name -> (module, the importable package it needs, the pip install line)
SINKS = {
    "tensorboard": ("dropbench.loggers.tb", "tensorboard", "pip install tensorboard"),
    "mlflow": ("dropbench.loggers.mlflow_run", "mlflow", "pip install mlflow"),
    "wandb": ("dropbench.loggers.wandb_run", "wandb", "pip install wandb"),
}
EXTRA = 'pip install "dropbench[tracking]"'  # all three


@dataclass
class RunInfo:
    """What every sink learns about the run when it opens."""

    run_dir: Path
    params: dict  # the config flattened to dotted keys
    sweep_dir: Path | None  # the multirun dir this run belongs to, if any
    rows: list[dict] = field(default_factory=list)  # epochs already on disk (a resume)
    state: dict = field(default_factory=dict)  # this sink's part of loggers.json


class Sinks:
    """Fan-out to the enabled sinks on a background thread. No sinks: every call is a no-op."""

    def __init__(self, sinks: dict | None = None, run_dir: Path | None = None,
                 timeout_s: float = 60.0):
        self.sinks = sinks or {}  # name -> sink object (start, epoch, finish)
        self.run_dir = run_dir
        self.timeout_s = timeout_s
        self.jobs: queue.Queue = queue.Queue()
        self.failed: set[str] = set()
        self.thread = None
        if self.sinks:
            self.thread = threading.Thread(target=self._work, name="dropbench-loggers",
                                           daemon=True)
            self.thread.start()

    @classmethod
    def open(cls, cfg, run_dir, rows=()) -> "Sinks":
        """The sinks that cfg.logger turns on, started with what the run dir already holds."""
        run_dir = Path(run_dir)
        wanted = [name for name in SINKS if cfg.logger[name].enabled]
        if not wanted:
            return cls()
        sinks = {}
        for name in wanted:
            module, package, pip = SINKS[name]
            if importlib.util.find_spec(package) is None:
                log.warning("logger %s is off: the %s package is missing; install it with "
                            "`%s` (or all loggers: `%s`)", name, package, pip, EXTRA)
                continue
            sinks[name] = importlib.import_module(module).Sink(cfg.logger[name])
        info = RunInfo(run_dir, flat_params(cfg), sweep_dir_of(run_dir), list(rows))
        opened = cls(sinks, run_dir, cfg.logger.flush_timeout_s)
        opened._put("start", info)
        return opened

    # --- what the trainer and engine call -------------------------------------------------
    def epoch(self, row: dict) -> None:
        if self.sinks:
            self._put("epoch", dict(row))

    def close(self, summary: dict, interrupted: bool = False) -> None:
        """Send the final summary and wait (briefly after Ctrl-C) for the sinks to finish."""
        if not self.sinks:
            return
        status = summary.get("status")  # still "running": ended by an unexpected error
        self._put("finish", {**summary, "status": "failed" if status == "running" else status})
        self.jobs.put(None)
        self.thread.join(min(self.timeout_s, 5.0) if interrupted else self.timeout_s)
        if self.thread.is_alive():
            log.warning("loggers still busy after %.0f s; leaving them (the run dir is "
                        "complete): %s", self.timeout_s, ", ".join(self.sinks))

    # --- the background thread ----------------------------------------------------------------
    def _put(self, method: str, arg) -> None:
        self.jobs.put((method, arg))

    def _work(self) -> None:
        while (job := self.jobs.get()) is not None:
            method, arg = job
            for name, sink in self.sinks.items():
                if name in self.failed:
                    continue
                try:
                    if method == "start":
                        self._start(name, sink, arg)
                    else:
                        getattr(sink, method)(arg)
                except Exception as e:  # a sink never fails the run: warn once, then off
                    self.failed.add(name)
                    first = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
                    log.warning("logger %s failed and is off for the rest of this run "
                                "(%s: %s); the run dir has every result", name,
                                type(e).__name__, first)

    def _start(self, name: str, sink, info: RunInfo) -> None:
        states = read_state(info.run_dir)
        own = RunInfo(info.run_dir, info.params, info.sweep_dir, info.rows,
                      states.get(name) or {})
        states[name] = sink.start(own)
        write_state(info.run_dir, states)


def flat_params(cfg) -> dict:
    """The run's config as {dotted key: value}, values resolved."""
    from omegaconf import OmegaConf

    return rundir.flatten(OmegaConf.to_container(cfg, resolve=True), lists_as_text=True)


def sweep_dir_of(run_dir: Path) -> Path | None:
    """The multirun dir holding this run: Hydra writes multirun.yaml there when a sweep starts."""
    for parent in run_dir.resolve().parents:
        if (parent / "multirun.yaml").is_file():
            return parent
    return None


def read_state(run_dir: Path) -> dict:
    try:
        state = json.loads((run_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def write_state(run_dir: Path, state: dict) -> None:
    from dropbench.atomic import write_json

    write_json(run_dir / STATE_FILE, state)


def numeric_items(row: dict) -> dict[str, float]:
    """The row's numbers (every metrics.csv column but `epoch`), finite or not."""
    return {k: float(v) for k, v in row.items()
            if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool)}


def final_metrics(summary: dict) -> dict[str, float]:
    """The summary's results that a tracking tool compares runs by."""
    keys = [k for k in summary if k.startswith(rundir.SCORE_PREFIXES)] + ["best_epoch",
                                                                           "epochs_run", "wall_s"]
    return {k: float(summary[k]) for k in keys
            if isinstance(summary.get(k), (int, float)) and not isinstance(summary[k], bool)}
