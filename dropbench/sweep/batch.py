"""Train a batch of sweep members as one stacked model, each in its own run dir.

Each member is prepared by the engine exactly as `dropbench train` prepares a run alone (its
seed and initialisation, its resume from checkpoints/last.pt), and its own `Run` scores,
checkpoints, logs and stops early after every epoch (trainer.py: begin / end_epoch / finish),
so metrics.csv, summary.json, checkpoints and train.log are written as they would be alone.
Only the training epochs are shared: one stacked forward/backward per step
(dropbench/sweep/stacked.py), one batched pass over train_eval and val per epoch. A member
that stops (patience, its own epoch count, divergence) leaves the stack.
"""

import logging
import signal
import time

import torch
from torch import nn

from dropbench import DropbenchError, rundir
from dropbench.config import check_rate, layer_rates
from dropbench.data import batch_indices
from dropbench.engine import train
from dropbench.engine.mc import CHUNK  # examples per evaluation pass, as the task's
from dropbench.engine.seeding import get_rng_state
from dropbench.engine.trainer import sigterm_as_interrupt
from dropbench.models.mlp import activation_module
from dropbench.sweep.jobs import MemberJob
from dropbench.sweep.stacked import MemberSettings, StackedMLP

log = logging.getLogger("dropbench.sweep")


class ScoredTask:
    """A member's task whose evaluate() answers from the batch's scores of this epoch and
    falls back to scoring the member's own model (the test split, at its best epoch)."""

    def __init__(self, task):
        self.task = task
        self.scores: dict[str, dict] = {}

    def __getattr__(self, name):
        return getattr(self.task, name)

    def evaluate(self, model, split: str) -> dict:
        scores = self.scores.pop(split, None)
        return scores if scores is not None else self.task.evaluate(model, split)


class Member:
    """One job of the batch: its Hydra job, its Run, and the random stream it draws from."""

    def __init__(self, job: MemberJob, run, rng: dict):
        self.job, self.run = job, run
        self.rng = rng  # the seeded streams right after its model was built (or resumed)
        device = run.device
        self.generator = torch.Generator(device)
        self.generator.set_state(rng["torch"] if device.type == "cpu"
                                 else torch.cuda.get_rng_state(device))
        run.rng_state = self.rng_state  # its checkpoints store its own stream
        run.task = ScoredTask(run.task)
        self.linears = [m for m in run.model.modules() if isinstance(m, nn.Linear)]
        self.failed: BaseException | None = None

    def rng_state(self) -> dict:
        if self.run.device.type == "cpu":
            return {**self.rng, "torch": self.generator.get_state()}
        return {**self.rng, "cuda": [self.generator.get_state()]}

    def settings(self) -> MemberSettings:
        cfg, group = self.run.cfg, self.run.optimizer.param_groups[0]
        return MemberSettings(
            p_input=check_rate(cfg.dropout.p_input, "dropout.p_input"),
            p_hidden=layer_rates(cfg.dropout.p, len(cfg.model.hidden)),
            lr=group["lr"], momentum=group["momentum"], weight_decay=group["weight_decay"],
            max_norm=cfg.optim.max_norm, generator=self.generator)

    def parameters(self) -> list[nn.Parameter]:
        """In StackedMLP.parameters() order: every weight, then every bias."""
        return [m.weight for m in self.linears] + [m.bias for m in self.linears]

    def momentum_buffers(self) -> list[torch.Tensor | None]:
        state = self.run.optimizer.state
        return [state.get(p, {}).get("momentum_buffer") for p in self.parameters()]

    @torch.no_grad()
    def take(self, stack: StackedMLP, k: int) -> None:
        """Copy slice k of the stack into this member's model and optimiser state."""
        params, buffers = stack.member_tensors(k)
        momentum = self.run.optimizer.param_groups[0]["momentum"]
        for p, value, buf in zip(self.parameters(), params, buffers, strict=True):
            p.copy_(value)
            if momentum != 0:  # torch.optim.SGD keeps buffers only with momentum
                self.run.optimizer.state[p]["momentum_buffer"] = buf.clone(
                    memory_format=torch.contiguous_format)


def objective(summary: dict):
    """What a Hydra sweeper optimises: the best validation metric (as cli._train_task)."""
    return summary.get(f"best_val_{summary.get('metric')}")


def prepare_members(jobs: list[MemberJob]) -> tuple[list[Member], dict]:
    """Start every job and prepare its run; returns (members to train, {job num: JobReturn}
    of the jobs that failed or were already complete)."""
    members, done, data = [], {}, None
    for job in jobs:
        job.start()
        with job.logging():
            try:  # keep the prepared Run, with the seeded streams it will draw from
                result = train(job.cfg, job.dir, job.overrides, data=data,
                               start=lambda run: (run, get_rng_state()))
            except Exception as e:  # as Hydra's run_job: the job fails, the sweep goes on
                log.error("job #%s failed: %s", job.num, e)
                done[job.num] = job.end(error=e)
                continue
        if isinstance(result, dict):  # already complete (trainer.resume=true)
            done[job.num] = job.end(objective(result))
            continue
        run, rng = result
        data = run.task.data  # loaded once, shared by the members that follow
        members.append(Member(job, run, rng))
    return members, done


def stack_members(members: list[Member]) -> StackedMLP:
    cfg = members[0].run.cfg
    nesterov = members[0].run.optimizer.param_groups[0]["nesterov"]
    stack = StackedMLP([m.linears for m in members], activation_module(cfg.model.activation),
                       [m.settings() for m in members], nesterov)
    for k, m in enumerate(members):
        stack.set_momentum_buffers(k, m.momentum_buffers())
    return stack


def train_epoch(stack: StackedMLP, members: list[Member]) -> list[dict]:
    """One epoch of every member, each on its own shuffled order of the training set."""
    task = members[0].run.task
    sums, projected = stacked_epoch(stack, task.data.train, task.batch_size,
                                    [m.run.shuffle for m in members])
    scores = [task.finish(s) for s in sums]
    for k, m in enumerate(members):
        if m.run.cfg.optim.max_norm is not None:  # as Run.train_epoch reports it
            scores[k][rundir.MAX_NORM_COLUMN] = int(projected[k])
    return scores


def stacked_epoch(stack: StackedMLP, train_set, batch_size: int,
                  shuffles: list[torch.Generator]) -> tuple[torch.Tensor, torch.Tensor]:
    """One epoch of SGD steps for every member, member k's batches in the order its own
    generator shuffles[k] draws (as its lone run's); returns the (K, 3) on-device sums and
    the (K,) counts of weight vectors max-norm projected."""
    orders = [batch_indices(len(train_set), batch_size, g) for g in shuffles]
    sums = torch.zeros(stack.size, 3, device=train_set.x.device)
    projected = torch.zeros(stack.size, dtype=torch.long, device=train_set.x.device)
    for step in zip(*orders, strict=True):
        idx = torch.stack(step).to(train_set.x.device)  # (K, B)
        loss, batch_sums = stack.losses(train_set.x[idx], train_set.y[idx], train=True)
        loss.sum().backward()  # each member's parameters get the gradient of its own loss
        stack.sgd_step()
        step_projected = stack.apply_max_norm()
        if step_projected is not None:
            projected += step_projected
        sums += batch_sums
    return sums, projected


@torch.no_grad()
def evaluate(stack: StackedMLP, task, split: str) -> list[dict]:
    """Every member's scores on one split (the same examples for all), eval mode."""
    data = task.train_eval if split == "train_eval" else getattr(task.data, split)
    sums = torch.zeros(stack.size, 3, device=data.x.device)
    for i in range(0, len(data), CHUNK):
        x, y = data.x[i : i + CHUNK], data.y[i : i + CHUNK]
        sums += stack.losses(x.expand(stack.size, *x.shape), y.expand(stack.size, len(y)),
                             train=False)[1]
    return [task.finish(s) for s in sums]


def train_members(members: list[Member]) -> dict:
    """Train the members to their end; returns {job num: JobReturn}, each job ended (and the
    callbacks told) as soon as its member finishes."""
    results = {}
    for m in members:
        m.run.summary["batched_members"] = len(members)
        with m.job.logging(console=False):
            m.run.begin()
    previous = sigterm_as_interrupt()
    try:
        active = finish_stopped(members, results)
        stack = stack_members(active) if active else None
        epoch = 0
        while active:
            start = time.perf_counter()
            scores = train_epoch(stack, active)
            seconds = time.perf_counter() - start
            task = active[0].run.task
            evals = {split: evaluate(stack, task, split) for split in ("train_eval", "val")}
            for k, m in enumerate(active):
                m.take(stack, k)
                m.run.task.scores = {split: evals[split][k] for split in evals}
                with m.job.logging(console=False):
                    try:
                        m.run.end_epoch(scores[k], seconds)
                    except DropbenchError as e:  # diverged: the others go on
                        m.failed = e
            epoch += 1
            log.info("batch of %d: epoch %d in %.1f s", len(active), epoch,
                     time.perf_counter() - start)
            still = finish_stopped(active, results)
            if still and len(still) < len(active):
                stack.keep([active.index(m) for m in still])
            active = still
            if active:
                stack.set_lr([m.run.optimizer.param_groups[0]["lr"] for m in active])
    except KeyboardInterrupt:
        for m in members:
            if m.run.summary["status"] == "running":
                m.run.write_summary(status="interrupted")
                m.run.sinks.close(m.run.summary, interrupted=True)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    return results


def finish_stopped(members: list[Member], results: dict) -> list[Member]:
    """Finish the members that stopped (or failed) and return the ones still training."""
    still = []
    for m in members:
        if m.failed is None and m.run.wants_epoch():
            still.append(m)
            continue
        with m.job.logging():
            try:
                if m.failed is not None:
                    raise m.failed
                summary = m.run.finish(stopped_early=m.run.epoch < m.run.cfg.trainer.epochs)
                outcome = {"value": objective(summary)}
            except DropbenchError as e:
                log.error("job #%s failed: %s", m.job.num, e)
                outcome = {"error": e}
            finally:  # its loggers' sinks, as engine.fit closes them
                m.run.sinks.close(m.run.summary, interrupted=False)
        results[m.job.num] = m.job.end(**outcome)
    return still
