"""The epoch loop: train, score train-eval/val, checkpoint, stop early, test at the best epoch.

The files it writes are described in docs/run-dir.md (names in dropbench/rundir.py). Each
epoch writes checkpoints/last.pt first, then best.pt, metrics.csv and summary.json: a run
killed at any moment has a checkpoint for every row of its metrics.csv.
"""

import json
import logging
import math
import platform
import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

import dropbench.engine.process as process
from dropbench import rundir, units, version
from dropbench.atomic import CsvRows, FormattedRows, write_json
from dropbench.dropout import hooks
from dropbench.dropout.describe import describe_dropout
from dropbench.engine.accel import keep_freed_memory, maybe_compile, mixed_precision
from dropbench.engine.io import load_checkpoint, save_checkpoint
from dropbench.engine.optim import (
    apply_max_norm,
    build_optimizer,
    build_scheduler,
    evaluation_weights,
    l1_penalty,
    largest_weight_norm,
    scaled_lr,
)
from dropbench.engine.seeding import get_rng_state, set_rng_state
from dropbench.engine.session import Session
from dropbench.errors import DropbenchError
from dropbench.rundir import RunDirRefused

log = logging.getLogger("dropbench")


def no_known_scores(split: str) -> None:
    return None


@dataclass(frozen=True)
class RunHooks:
    """What a caller that trains a run's epochs itself (a batched sweep, dropbench/sweep/)
    supplies in place of the run's own workings; the defaults are a run training alone."""

    # the random streams the run draws from, as its checkpoints record them
    rng_state: Callable[[], dict] = get_rng_state
    # a split's scores already computed for this epoch, or None to score the run's model
    known_scores: Callable[[str], dict | None] = no_known_scores


ALONE = RunHooks()  # a run that trains its own epochs


class Run:
    """One training run in one run directory: built from its parts, restored from
    `checkpoint` when one is given (RunDirRefused if it does not fit), recording into
    `session` once training begins."""

    def __init__(self, cfg, run_dir: Path, task, model, device, overrides=(), *,
                 checkpoint: dict | None = None, session: Session | None = None,
                 run_hooks: RunHooks = ALONE):
        self.cfg, self.task, self.model, self.device = cfg, task, model, device
        self.dir = Path(run_dir)
        self.session = session if session is not None else Session()
        self.run_hooks = run_hooks
        self.optimizer = build_optimizer(cfg.optim, model)
        self.scheduler = build_scheduler(cfg.optim, self.optimizer, cfg.trainer.epochs)
        self.shuffle = torch.Generator().manual_seed(cfg.seed)  # batch order, apart from dropout
        self.autocast, self.scaler = mixed_precision(cfg.trainer.amp, device)
        self.forward = maybe_compile(model, cfg.trainer.compile, device)  # what batches go through
        if device.type == "cpu":
            keep_freed_memory()  # no page faults for each step's big tensors (accel.py)
        # read at every epoch of every member of a stack: plain numbers, not config lookups
        t = cfg.trainer
        self.epochs, self.eval_every, self.patience = t.epochs, t.eval_every, t.patience
        self.epoch = 0
        self.rows: list[dict] = []
        self.metrics_csv = CsvRows()  # formats each row once
        # the rows as last.pt holds them: one JSON text, each row formatted once (pickling
        # every row's numbers again at every checkpoint made the saves quadratic in epochs)
        self.rows_json = FormattedRows(json.dumps)
        self.best = {"epoch": None, "val_loss": math.inf}
        self.wall_s = 0.0
        self.bad_epochs = 0  # epochs since the best val loss (early stopping)
        self.summary = {
            "format_version": rundir.FORMAT_VERSION,
            "status": "running",
            "metric": task.metric,
            "n_params": sum(p.numel() for p in model.parameters()),
            "device": str(device),
            "threads": torch.get_num_threads(),
            "seed": cfg.seed,
            "versions": {"dropbench": version.__version__, "torch": torch.__version__,
                         "python": platform.python_version()},
            "overrides": list(overrides),
            "dropout_built": describe_dropout(model),  # one entry per dropout module
            "process": process.describe(),
        }
        if checkpoint is not None:
            self.restore(checkpoint)

    # --- checkpoints -------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "rng": self.run_hooks.rng_state(),
            "shuffle": self.shuffle.get_state(),
            "scaler": self.scaler.state_dict(),
            "rows": "[" + ",".join(self.rows_json(self.rows)) + "]",
            "best": self.best,
            "wall_s": self.wall_s,
        }

    def restore(self, state: dict) -> None:
        last = self.dir / rundir.LAST
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler and state["scheduler"]:
                self.scheduler.load_state_dict(state["scheduler"])
            set_rng_state(state["rng"])
            self.shuffle.set_state(state["shuffle"])
            if state.get("scaler"):  # empty when fp16 loss scaling is off
                self.scaler.load_state_dict(state["scaler"])
            rows = state["rows"]  # one JSON text, or the list of rows as plain data
            self.epoch, self.rows = state["epoch"], json.loads(rows) if isinstance(rows, str) \
                else rows
            self.best, self.wall_s = state["best"], state["wall_s"]
        except (KeyError, ValueError, TypeError, RuntimeError) as e:
            why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise RunDirRefused(f"checkpoint {last} does not fit this run ({why[:200]}); resume "
                                f"with the run's own config, or start over with "
                                f"trainer.overwrite=true") from None
        self.keep_best_in_step()
        log.info("resumed from %s at epoch %d", last, self.epoch)

    def keep_best_in_step(self) -> None:
        """A kill between writing last.pt and best.pt leaves a best.pt older than the best
        epoch last.pt names; that epoch is the one just restored, so write it again."""
        best = self.dir / rundir.BEST
        if self.best["epoch"] != self.epoch or self.epoch == 0:
            return
        if not best.exists() or load_checkpoint(best).get("epoch") != self.epoch:
            with evaluation_weights(self.optimizer):  # the weights that were scored
                save_checkpoint(best, {"epoch": self.epoch, "model": self.model.state_dict()})

    def write_summary(self, **fields) -> None:
        self.summary.update(fields, epochs_run=self.epoch, wall_s=round(self.wall_s, 3),
                            best_epoch=self.best["epoch"])
        write_json(self.dir / rundir.SUMMARY, self.summary)
        if self.summary["status"] != "running":  # completed, diverged or interrupted
            self.session.end(self.epoch, self.summary["status"])

    def close_loggers(self, interrupted: bool = False) -> None:
        self.session.close_loggers(self.summary, interrupted=interrupted)

    # --- training ----------------------------------------------------------------------
    def train_epoch(self, task=None) -> dict:
        """One epoch over the run's training data, or over `task`'s (the benchmark warms up on
        a few batches of the same model and optimiser)."""
        task = self.task if task is None else task
        self.model.train()
        sums = None  # the task's on-device sums: 3 entries, plus one per objective column
        show = self.cfg.trainer.progress and sys.stderr.isatty()
        steps = task.num_train_batches()
        bar = tqdm(total=steps, desc=f"epoch {self.epoch + 1}", leave=False, disable=not show,
                   dynamic_ncols=True)
        opt = self.cfg.optim
        hooks.set_epoch(self.model, self.epoch, self.epochs, steps)
        schedule = hooks.schedule_of(self.model)
        projected = 0  # weight vectors max-norm put back on its ball this epoch
        for i, batch in enumerate(task.train_batches(self.shuffle)):
            if schedule is not None:
                schedule.set_step(self.epoch * steps + i, self.epochs * steps)
            with self.autocast():
                loss, batch_sums = task.train_step(self.forward, batch)
            self.optimizer.zero_grad(set_to_none=True)
            penalty = l1_penalty(self.model, opt.l1) + hooks.regularization(self.model)
            self.scaler.scale(loss + penalty).backward()
            if opt.clip is not None:
                self.scaler.unscale_(self.optimizer)  # clip the true gradients
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), opt.clip)
            with scaled_lr(self.optimizer, task.lr_scale):
                self.scaler.step(self.optimizer)  # skips the step if fp16 gradients overflowed
            self.scaler.update()
            if opt.max_norm is not None:
                projected = projected + apply_max_norm(self.model, opt.max_norm)
            sums = batch_sums if sums is None else sums + batch_sums
            bar.update()
            if show and i % 20 == 0:  # a device sync: only when someone is watching
                bar.set_postfix(loss=f"{loss.item():.4f}")
        bar.close()
        scores = task.finish(sums)
        if opt.max_norm is not None:  # 0 every epoch: the constraint never acted
            scores[rundir.MAX_NORM_COLUMN] = int(projected)
        return scores

    def epoch_row(self, train: dict, seconds: float) -> dict:
        metrics = self.task.metrics
        row = {"epoch": self.epoch + 1, "lr": self.optimizer.param_groups[0]["lr"],
               "seconds": round(seconds, 4), "train_loss": train["loss"],
               **{f"train_{m}": train[m] for m in metrics}}
        for split in ("train_eval", "val"):
            with self.autocast():
                scores = self.evaluate(split)
            row[f"{split}_loss"] = scores["loss"]
            row.update({f"{split}_{m}": scores[m] for m in metrics})
        if rundir.MAX_NORM_COLUMN in train:
            row[rundir.MAX_NORM_COLUMN] = train[rundir.MAX_NORM_COLUMN]
        for column in self.task.objective.columns:  # e.g. R-Drop's train_kl
            row[column] = train[column]
        row.update(hooks.logged_values(self.model))
        return row

    def evaluate(self, split: str) -> dict:
        """Loss and metric of the model on a split, unless the run's hooks already know them."""
        known = self.run_hooks.known_scores(split)
        return known if known is not None else self.task.evaluate(self.forward, split)

    def fit(self) -> dict:
        self.begin()
        while self.wants_epoch():
            start = time.perf_counter()
            train = self.train_epoch()
            self.end_epoch(train, time.perf_counter() - start)
        return self.finish(stopped_early=self.epoch < self.epochs)

    def begin(self) -> None:
        self.session.open(self.cfg, self.dir, self.device, self.epoch, self.rows)
        if self.epoch == 0 and not self.rows:  # always something to resume from
            save_checkpoint(self.dir / rundir.LAST, self.state())
        self.write_summary(status="running")
        self.bad_epochs = self.epoch - (self.best["epoch"] or 0)

    def wants_epoch(self) -> bool:
        """Another epoch to train: epochs left and patience not run out."""
        return self.epoch < self.epochs and (self.patience is None
                                             or self.bad_epochs < self.patience)

    def records(self, epoch: int) -> bool:
        """Whether epoch `epoch` (1-based) is scored and written: every trainer.eval_every-th
        epoch, and the last one."""
        return epoch % self.eval_every == 0 or epoch >= self.epochs

    def end_epoch(self, train: dict, train_seconds: float) -> None:
        """Score, checkpoint and log the epoch whose training gave `train` (loss, metric); an
        epoch between two recorded ones only counts (a resume retrains it from the last
        checkpoint, whose generators repeat it exactly)."""
        start = time.perf_counter() - train_seconds
        if math.isfinite(train["loss"]) and not self.records(self.epoch + 1):
            self.count_epoch(train_seconds)
            return
        ckpt = self.dir / "checkpoints"
        if not math.isfinite(train["loss"]):
            self.write_summary(status="diverged")
            raise DropbenchError(
                f"training diverged in epoch {self.epoch + 1} (train loss {train['loss']}); "
                f"lower optim.lr. The last good checkpoint is kept in {ckpt}"
            )
        with evaluation_weights(self.optimizer):  # NT-ASGD: its average is the model
            row = self.epoch_row(train, time.perf_counter() - start)
            improved = row["val_loss"] < self.best["val_loss"]
            # the weights scored (NT-ASGD: the average), kept for best.pt after last.pt
            best_weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()
                            } if improved else None
        # The epoch counts from here on, and its files are written all or none: an interrupt
        # before this point leaves it uncounted, one inside waits for the block to end.
        with interrupts_deferred():
            self.epoch += 1
            self.optimizer_check(row["val_loss"])
            if self.scheduler:
                self.scheduler.step()
            self.wall_s += time.perf_counter() - start
            self.rows.append(row)
            self.bad_epochs += row["epoch"] - (self.rows[-2]["epoch"] if len(self.rows) > 1
                                               else 0)  # epochs since the last recorded one
            if improved:
                self.best = {"epoch": self.epoch, "val_loss": row["val_loss"]}
                self.bad_epochs = 0
            # last.pt holds the rows too: written first, every row on disk has its checkpoint
            save_checkpoint(self.dir / rundir.LAST, self.state())
            if improved:
                save_checkpoint(self.dir / rundir.BEST, {"epoch": self.epoch,
                                                         "model": best_weights})
            self.metrics_csv.write(self.dir / rundir.METRICS, self.rows)
            self.write_summary(status="running")
        log_epoch(row, self.epochs, self.task.metrics)
        self.session.sinks.epoch(row)

    def count_epoch(self, train_seconds: float) -> None:
        """An epoch trained but not recorded. Nothing is written, so an interrupt here leaves
        no files disagreeing: a resume starts from the last checkpoint."""
        self.epoch += 1
        if self.scheduler:
            self.scheduler.step()
        self.wall_s += train_seconds

    def optimizer_check(self, val_loss: float) -> None:
        """Optimisers that react to validation (NT-ASGD's switch to averaging) see each epoch's."""
        if hasattr(self.optimizer, "observe") and self.optimizer.observe(val_loss, self.epoch):
            log.info("NT-ASGD: val loss %.4f is above the best before the last %d epochs; "
                     "averaging from epoch %d on", val_loss, self.cfg.optim.nonmono,
                     self.epoch + 1)

    def warn_if_max_norm_idle(self) -> None:
        """A max-norm radius that no weight vector reached regularised nothing: the run is the
        run without it. Say so, with the largest norm the net has, so a user can pick one."""
        radius = self.cfg.optim.max_norm
        if radius is None or any(row.get(rundir.MAX_NORM_COLUMN) for row in self.rows):
            return
        log.warning("optim.max_norm=%g never acted: in no recorded epoch did a weight vector "
                    "reach that norm (the largest is %.3g now), so it constrained nothing; a "
                    "radius below that does", radius, largest_weight_norm(self.model))

    def finish(self, stopped_early: bool) -> dict:
        m, metrics = self.task.metric, self.task.metrics
        best_path = self.dir / rundir.BEST
        if best_path.exists():
            best_row = next(r for r in self.rows if r["epoch"] == self.best["epoch"])
            self.summary.update({rundir.BEST_VAL_LOSS: best_row["val_loss"],
                                 **{rundir.best_val_key(k): best_row[f"val_{k}"]
                                    for k in metrics}})
            if self.task.tests_last_epoch:  # the protocol's final weights
                self.summary["tested_epoch"] = self.epoch
            else:
                self.model.load_state_dict(load_checkpoint(best_path)["model"])
                self.summary["tested_epoch"] = self.best["epoch"]
        with self.autocast():
            test = self.evaluate("test")
            final = self.task.final_scores(self.model, self.cfg.eval)
            self.summary.update(final)
            if self.cfg.eval.compare:
                self.summary["eval_compare"] = self.task.compare(self.model, self.cfg.eval)
        self.write_summary(status="completed", stopped_early=stopped_early,
                           **{rundir.TEST_LOSS: test["loss"],
                              **{rundir.test_key(k): test[k] for k in metrics}})
        self.warn_if_max_norm_idle()
        tested = ("" if self.summary.get("tested_epoch") in (None, self.best["epoch"])
                  else f", tested at epoch {self.summary['tested_epoch']} (the last)")
        log.info("completed: best epoch %s%s, test loss %.4f, test %s %s%s",
                 self.best["epoch"], tested, test["loss"], m, units.shown(m, test[m]),
                 self.task.describe_final(final))
        return self.summary


def log_epoch(row: dict, epochs: int, metrics) -> None:
    """`epoch 3/20  train loss 0.4321 acc 86.02 %  train_eval ...  val ...  (1.2s)`: accuracy
    in percent, as status and the report show it (metrics.csv keeps the fraction)."""
    metrics = (metrics,) if isinstance(metrics, str) else metrics
    scores = [f"{split} loss {row[f'{split}_loss']:.4f} "
              + " ".join(f"{m} {units.shown(m, row[f'{split}_{m}'])}" for m in metrics)
              for split in ("train", "train_eval", "val")]
    log.info("epoch %d/%d  %s  (%.1fs)", row["epoch"], epochs, "  ".join(scores), row["seconds"])


def sigterm_as_interrupt():
    """SLURM and friends send SIGTERM before killing a job: treat it like Ctrl-C."""

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    return signal.signal(signal.SIGTERM, handler)


@contextmanager
def interrupts_deferred():
    """Hold Ctrl-C and SIGTERM until the block ends, then raise KeyboardInterrupt: an
    interrupt in the middle of an epoch's writes would leave last.pt, metrics.csv and
    summary.json counting different epochs. Signals reach only the main thread, so other
    threads run the block as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending = []
    # only signals that would raise here anyway; an ignored or default one keeps its way
    held = [s for s in (signal.SIGINT, signal.SIGTERM) if callable(signal.getsignal(s))]
    previous = {s: signal.signal(s, lambda signum, frame: pending.append(signum)) for s in held}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if pending:
        raise KeyboardInterrupt(f"signal {signal.Signals(pending[0]).name}")


def run_with_interrupts(run: Run) -> dict:
    previous = sigterm_as_interrupt()
    try:
        return run.fit()
    except KeyboardInterrupt:
        run.write_summary(status="interrupted")
        log.warning("interrupted: resume with trainer.resume=true hydra.run.dir=%s", run.dir)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)

