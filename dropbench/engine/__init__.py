"""Set up a run from a composed config and train it. Entry point: `train(cfg, run_dir)`.

Order of events in a run dir: take the lock; decide fresh / resume / nothing to do (reading
only, so a refusal leaves the dir as it was); then write the config, the manifest session
and, epoch by epoch, checkpoints before metrics and summary (docs/run-dir.md).
"""

import contextlib
import logging
from pathlib import Path

import torch
import yaml
from omegaconf import OmegaConf

from dropbench import rundir
from dropbench.atomic import atomic_write_bytes, write_json
from dropbench.config import validate
from dropbench.data import load_data
from dropbench.dropout.catalog import declaration
from dropbench.dropout.describe import format_built
from dropbench.dropout.no_op import refuse_no_op_scheme
from dropbench.engine import mc, process
from dropbench.engine.accel import default_threads
from dropbench.engine.io import load_checkpoint
from dropbench.engine.lock import RunDirLock
from dropbench.engine.manifest import Manifest, command_line, data_fingerprint
from dropbench.engine.resume import check_same_data, plan_start, read_json, resolved
from dropbench.engine.seeding import seed_everything
from dropbench.engine.session import Session
from dropbench.engine.tasks import TASKS
from dropbench.engine.trainer import ALONE, Run, RunHooks, run_with_interrupts
from dropbench.errors import DropbenchError
from dropbench.models import build_model
from dropbench.rundir import RunDirRefused

log = logging.getLogger("dropbench")


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DropbenchError(f"device={name} but PyTorch sees no CUDA GPU; use device=cpu "
                             f"or device=auto")
    return torch.device(name)


def previous_status(run_dir: Path) -> str | None:
    return (read_json(run_dir / rundir.SUMMARY) or {}).get("status")


def record_failure(run_dir: Path, cfg, overrides, error: BaseException,
                   status: str = "failed") -> None:
    """Mark the run `failed` (or `interrupted`) with the error's first line and type,
    whatever the error, so status, report and a resumed sweep read the run's true end. A
    run that ended otherwise (diverged, interrupted) keeps its status; a vanished dir is not
    made again."""
    if not (run_dir / rundir.CONFIG).is_file() or previous_status(run_dir) not in (None,
                                                                                  "running"):
        return
    text = str(error).strip()
    try:
        write_json(run_dir / rundir.SUMMARY, {
            "format_version": rundir.FORMAT_VERSION, "status": status,
            "error": text.splitlines()[0] if text else type(error).__name__,
            "error_type": type(error).__name__, "seed": cfg.seed,
            "overrides": list(overrides)})
    except DropbenchError as e:  # a full disk: the run's own error is the one to report
        log.warning("summary.json not updated: %s", e)


def write_config(run_dir: Path, cfg, overrides, hydra_cfg=None) -> None:
    """.hydra/: the resolved config, the overrides and Hydra's settings of this job."""
    atomic_write_bytes(run_dir / rundir.CONFIG, OmegaConf.to_yaml(cfg, resolve=True).encode())
    atomic_write_bytes(run_dir / rundir.OVERRIDES,
                       yaml.safe_dump(list(overrides), default_flow_style=False).encode())
    if hydra_cfg is not None:
        atomic_write_bytes(run_dir / rundir.HYDRA,
                           OmegaConf.to_yaml(OmegaConf.create({"hydra": hydra_cfg})).encode())


def clear_results(run_dir: Path) -> None:
    """Remove a previous run's results before a fresh start writes its config; only the
    files dropbench writes (rundir.RESULT_FILES), never anything else in checkpoints/."""
    for name in rundir.RESULT_FILES:
        (run_dir / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # kept when it holds files of the user's
        (run_dir / "checkpoints").rmdir()


def train(cfg, run_dir, overrides=(), hydra_cfg=None, start=None, data=None,
          run_hooks: RunHooks = ALONE, threads: int | None = None):
    """Train one run in `run_dir` and return its summary (also written to summary.json).

    A batched sweep (dropbench/sweep/) passes the dataset it loaded once for all its members,
    a `start(run)` that keeps the prepared Run to train it together with the others (the run
    dir then stays locked until that process ends), and the `run_hooks` through which the Run
    records the member's own random stream and answers from the batch's scores, and the torch
    threads the batch trains with (`threads`; None: trainer.threads, else one per free core)."""
    run_dir = Path(run_dir)
    lock = RunDirLock(run_dir).acquire()
    deferred = False
    try:
        # a deferred run trains after this returns: its process settings must stay in force
        with process.process_state() if start is None else contextlib.nullcontext():
            result = _train(cfg, run_dir, overrides, hydra_cfg, lock, start, data, run_hooks,
                            threads)
        deferred = start is not None and not isinstance(result, dict)
        return result
    finally:
        if not deferred:
            lock.release()


def _train(cfg, run_dir: Path, overrides, hydra_cfg, lock: RunDirLock, start, data,
           run_hooks: RunHooks, threads: int | None):
    plan = plan_start(run_dir, cfg)
    if plan == "done":
        log.info("%s already holds a completed run; nothing to do", run_dir)
        return read_json(run_dir / rundir.SUMMARY)
    if plan == "fresh":
        lock.claim()
        if previous_status(run_dir) or (run_dir / rundir.LAST).exists():
            log.info("starting %s over", run_dir)
        clear_results(run_dir)
        write_config(run_dir, cfg, overrides, hydra_cfg)
    try:
        run = prepare(cfg, run_dir, overrides, hydra_cfg, lock, plan == "resume", data, run_hooks,
                      threads)
        return (start or fit)(run)
    except RunDirRefused as e:
        if lock.claimed:  # e.g. a best.pt damaged mid-run: the run changed, and failed
            record_failure(run_dir, cfg, overrides, e)
        raise  # else refused before the run changed: nothing to record
    except Exception as e:  # user error, bad data or a bug: the summary says it failed
        record_failure(run_dir, cfg, overrides, e)
        raise
    except KeyboardInterrupt as e:  # before the epochs (which record it themselves)
        record_failure(run_dir, cfg, overrides, e, status="interrupted")
        raise


def prepare(cfg, run_dir: Path, overrides, hydra_cfg, lock: RunDirLock, resume: bool,
            data=None, run_hooks: RunHooks = ALONE, threads: int | None = None) -> Run:
    """The Run for `run_dir`: seeded, data loaded, model built, resumed from its checkpoint
    when asked (after checking the data and the checkpoint fit); its session, recorded in
    manifest.json and fed to the loggers, opens when training begins."""
    validate(cfg)
    refuse_no_op_scheme(cfg.model, cfg.dropout, overrides)  # a named scheme must drop
    torch.set_num_threads(threads or cfg.trainer.threads or default_threads())
    device = pick_device(cfg.device)
    seed_everything(cfg.seed, cfg.trainer.deterministic)
    if data is None:  # loading draws nothing from the seeded generators
        data = load_data(cfg.dataset, cfg.data_dir, device)
    fingerprint = data_fingerprint(data, device)
    task = TASKS[data.task](cfg, data)
    mc.check_supported(cfg.eval, task)
    model = build_model(cfg.model, cfg.dropout, data).to(device)
    if resume:
        check_same_data(run_dir, fingerprint)
    session = Session(Manifest(run_dir, resolved(cfg), fresh=not resume), command_line(),
                      fingerprint)
    checkpoint = load_checkpoint(run_dir / rundir.LAST) if resume else None
    run = Run(cfg, run_dir, task, model, device, overrides, checkpoint=checkpoint,
              session=session, run_hooks=run_hooks)
    if resume:
        if run.epoch > cfg.trainer.epochs:  # the config would claim fewer epochs than ran
            raise RunDirRefused(f"{run_dir} has already trained {run.epoch} epochs; resume "
                                f"with trainer.epochs={run.epoch} or more")
        lock.claim()  # every check passed: from here on this process writes the dir
        write_config(run_dir, cfg, overrides, hydra_cfg)  # same settings; new resume-only keys
    for stale in run_dir.rglob(".*.tmp"):  # left by a write that a SIGKILL cut short
        stale.unlink()
    log.info("model: %s (%d parameters) on %s", cfg.model.name, run.summary["n_params"], device)
    for line in format_built(run.summary["dropout_built"]):
        log.info(line)
    deviations = declaration(cfg.dropout.name).deviations_in(cfg.dropout)
    for deviation in deviations if run.summary["dropout_built"] else ():  # none built: moot
        log.info("dropout=%s deviates from its paper: %s", cfg.dropout.name, deviation)
    return run


def fit(run: Run) -> dict:
    """Train a prepared run to its end; its loggers' sinks close whatever happens."""
    try:
        return run_with_interrupts(run)
    finally:
        run.close_loggers(interrupted=run.summary["status"] == "interrupted")
