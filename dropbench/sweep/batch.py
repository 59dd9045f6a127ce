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
from functools import cached_property

import torch
from torch import nn

from dropbench import rundir
from dropbench.config import check_rate, layer_rates
from dropbench.data import batch_indices
from dropbench.engine import train
from dropbench.engine.mc import CHUNK  # examples per evaluation pass, as the task's
from dropbench.engine.seeding import get_rng_state
from dropbench.engine.trainer import RunHooks, sigterm_as_interrupt
from dropbench.errors import DropbenchError
from dropbench.models.mlp import activation_module
from dropbench.rundir import objective
from dropbench.sweep.jobs import MemberJob
from dropbench.sweep.stacked import MemberSettings, StackedMLP

log = logging.getLogger("dropbench.sweep")


class MemberStream:
    """The random stream a member draws its dropout masks from: its own generator, started
    from the state its lone run's torch generator has once the model is built (or resumed),
    so that its masks and the streams its checkpoints record are the lone run's."""

    def __init__(self):
        self.rng: dict = {}  # every seeded stream, as captured
        self.generator: torch.Generator | None = None

    def capture(self, device: torch.device) -> None:
        self.rng = get_rng_state()
        self.generator = torch.Generator(device)
        self.generator.set_state(self.rng["torch"] if device.type == "cpu"
                                 else torch.cuda.get_rng_state(device))

    def state(self) -> dict:
        """The streams as a checkpoint records them, the member's generator for torch's."""
        if self.generator.device.type == "cpu":
            return {**self.rng, "torch": self.generator.get_state()}
        return {**self.rng, "cuda": [self.generator.get_state()]}


class EpochScores:
    """A member's scores on train_eval and val this epoch, from the batched evaluation; each
    is answered once, and a split not given (test) is scored by the member's own model."""

    def __init__(self):
        self.scores: dict[str, dict] = {}

    def give(self, scores: dict[str, dict]) -> None:
        self.scores = dict(scores)

    def take(self, split: str) -> dict | None:
        return self.scores.pop(split, None)


class Member:
    """One job of the batch: its Hydra job, its Run, the random stream it draws from and the
    scores its Run answers from (given to the Run through its hooks)."""

    def __init__(self, job: MemberJob):
        self.job = job
        self.stream, self.scores = MemberStream(), EpochScores()
        self.run = None  # the prepared Run, once `prepare` has it
        self.failed: BaseException | None = None

    def run_hooks(self) -> RunHooks:
        return RunHooks(rng_state=self.stream.state, known_scores=self.scores.take)

    def prepare(self, data):
        """Prepare the job's run (train() stops short of its epochs, the dir kept locked);
        returns train()'s answer: the Run, or the summary of a run already complete."""

        def keep(run):
            self.stream.capture(run.device)  # the seeded streams it will draw from
            self.run = run
            return run

        return train(self.job.cfg, self.job.dir, self.job.overrides, data=data, start=keep,
                     run_hooks=self.run_hooks())

    @cached_property
    def linears(self) -> list[nn.Linear]:
        return [m for m in self.run.model.modules() if isinstance(m, nn.Linear)]

    def settings(self) -> MemberSettings:
        cfg, group = self.run.cfg, self.run.optimizer.param_groups[0]
        return MemberSettings(
            p_input=check_rate(cfg.dropout.p_input, "dropout.p_input"),
            p_hidden=layer_rates(cfg.dropout.p, len(cfg.model.hidden)),
            lr=group["lr"], momentum=group["momentum"], weight_decay=group["weight_decay"],
            max_norm=cfg.optim.max_norm, generator=self.stream.generator)

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


def prepare_members(jobs: list[MemberJob]) -> tuple[list[Member], dict]:
    """Start every job and prepare its run; returns (members to train, {job num: JobReturn}
    of the jobs that failed or were already complete)."""
    members, done, data = [], {}, None
    for job in jobs:
        job.start()
        member = Member(job)
        with job.logging():
            try:
                result = member.prepare(data)
            except Exception as e:  # as Hydra's run_job: the job fails, the sweep goes on
                log.error("job #%s failed: %s", job.num, e)
                done[job.num] = job.end(error=e)
                continue
        if isinstance(result, dict):  # already complete (trainer.resume=true)
            done[job.num] = job.end(objective(result))
            continue
        data = member.run.task.data  # loaded once, shared by the members that follow
        members.append(member)
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
        with m.job.logging():  # begin opens the loggers, which may warn
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
                m.scores.give({split: evals[split][k] for split in evals})
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
                m.run.close_loggers(interrupted=True)
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
                m.run.close_loggers()
        results[m.job.num] = m.job.end(**outcome)
    return still
