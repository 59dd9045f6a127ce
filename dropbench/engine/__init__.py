"""Set up a run from a composed config and train it. Entry point: `train(cfg, run_dir)`."""

import json
import logging
import shutil
from pathlib import Path

import torch

from dropbench import DropbenchError
from dropbench.config import validate
from dropbench.data import load_data
from dropbench.dropout.describe import format_built
from dropbench.engine import mc
from dropbench.engine.accel import default_threads
from dropbench.engine.io import load_checkpoint, write_json
from dropbench.engine.seeding import seed_everything
from dropbench.engine.tasks import TASKS
from dropbench.engine.trainer import Run, run_with_interrupts
from dropbench.loggers import Sinks
from dropbench.models import build_model

log = logging.getLogger("dropbench")


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DropbenchError(f"device={name} but PyTorch sees no CUDA GPU; use device=cpu "
                             f"or device=auto")
    return torch.device(name)


def previous_status(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / "summary.json").read_text()).get("status")
    except (OSError, ValueError):
        return None


def train(cfg, run_dir, overrides=(), start=None, data=None):
    """Train one run in `run_dir` and return its summary (also written to summary.json).

    A batched sweep (dropbench/sweep/) passes the dataset it loaded once for all its members,
    and a `start(run)` that keeps the prepared Run to train it together with the others."""
    run_dir = Path(run_dir)
    status = previous_status(run_dir)
    if status == "completed" and cfg.trainer.resume:
        done = json.loads((run_dir / "summary.json").read_text())
        if done.get("stopped_early") or done.get("epochs_run", 0) >= cfg.trainer.epochs:
            log.info("%s already holds a completed run; nothing to do", run_dir)
            return done
        # otherwise a larger trainer.epochs extends the finished run from its last checkpoint
    if status is not None and not (cfg.trainer.resume or cfg.trainer.overwrite):
        raise DropbenchError(f"{run_dir} already holds a run ({status}); resume it with "
                             f"trainer.resume=true, replace it with trainer.overwrite=true, "
                             f"or pick another hydra.run.dir")
    try:
        return (start or fit)(prepare(cfg, run_dir, overrides, status, data))
    except DropbenchError as e:
        if previous_status(run_dir) in (None, "running"):  # keep diverged/interrupted as they are
            write_json(run_dir / "summary.json", {"status": "failed", "error": str(e),
                                                  "seed": cfg.seed, "overrides": list(overrides)})
        raise


def prepare(cfg, run_dir: Path, overrides, status, data=None) -> Run:
    """The Run for `run_dir`: seeded, data loaded, model built, resumed from its checkpoint
    when asked."""
    validate(cfg)
    torch.set_num_threads(cfg.trainer.threads or default_threads())
    device = pick_device(cfg.device)
    seed_everything(cfg.seed, cfg.trainer.deterministic)
    if data is None:  # loading draws nothing from the seeded generators
        data = load_data(cfg.dataset, cfg.data_dir, device)
    task = TASKS[data.task](cfg, data)
    mc.check_supported(cfg.eval, task)
    model = build_model(cfg.model, cfg.dropout, data).to(device)
    run = Run(cfg, run_dir, task, model, device, overrides)
    for stale in run_dir.rglob(".*.tmp"):  # left by a write that a SIGKILL cut short
        stale.unlink()
    last = run_dir / "checkpoints" / "last.pt"
    if cfg.trainer.resume and last.exists():
        run.restore(load_checkpoint(last))
    elif status is not None:
        log.info("overwriting the %s run in %s", status, run_dir)
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    log.info("model: %s (%d parameters) on %s", cfg.model.name, run.summary["n_params"], device)
    for line in format_built(run.summary["dropout_built"]):
        log.info(line)
    run.sinks = Sinks.open(cfg, run_dir, run.rows)
    return run


def fit(run: Run) -> dict:
    """Train a prepared run to its end; its loggers' sinks close whatever happens."""
    try:
        return run_with_interrupts(run)
    finally:
        run.sinks.close(run.summary, interrupted=run.summary["status"] == "interrupted")
