"""Train a batch of sweep members as one stacked model, each in its own run dir.

Each member is prepared by the engine exactly as `dropbench train` prepares a run alone (its
seed and initialisation, its resume from checkpoints/last.pt), and its own `Run` scores,
checkpoints, logs and stops early after every epoch (trainer.py: begin / end_epoch / finish),
so metrics.csv, summary.json, checkpoints and train.log are written as they would be alone.
Only the training epochs are shared: one stacked forward/backward of the task's step per step
(vmapped.py: any model that stackable.py accepts), each member's own optimiser update
(stacked_optim.py), one batched pass over train_eval and val per epoch. A member that stops
(patience, its own epoch count, divergence) leaves the stack, which is rebuilt without it.
Members whose models cannot stack train alone, one after another.
"""

import logging
import signal
import time

import torch
from omegaconf import OmegaConf

from dropbench import rundir
from dropbench.data import batch_indices
from dropbench.engine import fit, record_failure, train
from dropbench.engine.accel import default_threads
from dropbench.engine.mc import CHUNK  # examples per evaluation pass, as the task's
from dropbench.engine.optim import weight_matrices
from dropbench.engine.seeding import get_rng_state, set_rng_state
from dropbench.engine.trainer import ALONE, RunHooks, sigterm_as_interrupt
from dropbench.errors import DropbenchError
from dropbench.rundir import objective
from dropbench.sweep.jobs import MemberJob
from dropbench.sweep.member_data import MemberData, why_not_same_shapes
from dropbench.sweep.stackable import optimizer_kind, why_not_stacked
from dropbench.sweep.stacked_optim import StackedOptimizer
from dropbench.sweep.vmapped import StackedModel

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

    def prepare(self, data, threads: int):
        """Prepare the job's run (train() stops short of its epochs, the dir kept locked) to
        train with `threads` torch threads; returns train()'s answer: the Run, or the summary
        of a run already complete."""

        def keep(run):
            self.stream.capture(run.device)  # the seeded streams it will draw from
            self.run = run
            return run

        return train(self.job.cfg, self.job.dir, self.job.overrides, data=data, start=keep,
                     run_hooks=self.run_hooks(), threads=threads)

    @torch.no_grad()
    def take(self, stack: StackedModel, optimizer: StackedOptimizer, k: int) -> None:
        """Copy slice k of the stack into this member's model and optimiser state."""
        for p, value in zip(self.run.model.parameters(), stack.member_tensors(k), strict=True):
            p.copy_(value)
        optimizer.write_back(k)


def data_key(cfg) -> str:
    """What a member's data bundle depends on: members with one key share one bundle."""
    return OmegaConf.to_yaml(OmegaConf.create({"dataset": OmegaConf.to_container(
        cfg.dataset, resolve=True), "data_dir": str(cfg.data_dir)}), sort_keys=True)


def prepare_members(jobs: list[MemberJob]) -> tuple[list[Member], dict]:
    """Start every job and prepare its run; returns (members to train, {job num: JobReturn}
    of the jobs that failed or were already complete). Each data bundle is loaded once, for
    every member whose dataset config asks for it (a regression member's split and tau)."""
    members, done, bundles = [], {}, {}
    threads = None  # the batch trains with one thread count: chosen once, by its first job
    for job in jobs:
        job.start()
        member = Member(job)
        key = data_key(job.cfg)
        with job.logging():
            try:
                threads = threads or job.cfg.trainer.threads or default_threads()
                result = member.prepare(bundles.get(key), threads)
            except Exception as e:  # as Hydra's run_job: the job fails, the sweep goes on
                log.error("job #%s failed: %s", job.num, e)
                done[job.num] = job.end(error=e)
                continue
        if isinstance(result, dict):  # already complete (trainer.resume=true)
            done[job.num] = job.end(objective(result))
            continue
        bundles[key] = member.run.task.data  # loaded once, shared by the members that follow
        members.append(member)
    return members, done


def why_not_batched(members: list[Member]) -> str | None:
    """Why the prepared members cannot train as one stack (stackable.py's rules, then one
    trial step), or None."""
    reason = why_not_stacked([m.run.model for m in members])
    if reason is None:
        reason = why_not_same_shapes([m.run.task for m in members])
    if reason is None and any(optimizer_kind(m.run.optimizer) is None for m in members):
        reason = "the optimiser is not one the stack implements (sgd, adam, adamw)"
    return reason if reason is not None else trial_step_fails(members)


def trial_step_fails(members: list[Member]) -> str | None:
    """Run one stacked forward and backward on two training examples with throwaway streams
    and parameters: a model that passes the rules but draws random numbers or branches on
    values inside its forward (vmap refuses both) runs alone instead of failing the batch."""
    runs = [m.run for m in members]
    train_set = runs[0].task.data.train
    try:  # throwaway streams on the data's device: a CUDA stack draws from CUDA generators
        stack = StackedModel([r.model for r in runs],
                             [torch.Generator(train_set.x.device) for _ in runs],
                             train_set.x[:1])
        uncalled = stack.uncalled_slots()
        if uncalled:
            return (f"the dropout at {uncalled[0]} is applied outside its module's forward "
                    f"(fused into attention), which the stack cannot draw per member")
        x, y = train_set.x[:2], train_set.y[:2]
        noise = stack.draw_noise(len(y), x.dtype)
        loss, _ = stack.task_step(runs[0].task, x.expand(len(runs), *x.shape),
                                  y.expand(len(runs), *y.shape), True, noise)
        loss.sum().backward()
    except Exception as e:  # whatever vmap or the model refuses: this batch runs alone
        why = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        return f"a trial stacked step failed ({why})"
    return None


def stack_members(members: list[Member]) -> tuple[StackedModel, StackedOptimizer]:
    """The members' models and optimisers as one stack, from their current state."""
    first = members[0].run
    stack = StackedModel([m.run.model for m in members],
                         [m.stream.generator for m in members], first.task.data.train.x[:1])
    constrained = {id(w) for w in weight_matrices(first.model)}
    weights = [i for i, p in enumerate(first.model.parameters()) if id(p) in constrained]
    optimizer = StackedOptimizer(stack.parameters(), [m.run.optimizer for m in members],
                                 [m.run.cfg.optim.max_norm for m in members], weights,
                                 stack.transposed_indices())
    return stack, optimizer


def train_epoch(stack: StackedModel, optimizer: StackedOptimizer, members: list[Member],
                data: MemberData | None = None) -> list[dict | None]:
    """One epoch of every member, each on its own shuffled order of its training set; scores
    finished by each member's own task (its target scale), or None for a member whose Run
    only counts this epoch (Run.count_epoch: not recorded, nothing non-finite)."""
    task = members[0].run.task
    data = MemberData([m.run.task for m in members]) if data is None else data
    sums, projected = stacked_epoch(stack, optimizer, task, task.data.train, task.batch_size,
                                    [m.run.shuffle for m in members], data=data)
    finite = torch.isfinite(sums).all(dim=1).tolist()
    scores: list[dict | None] = []
    for k, m in enumerate(members):
        if finite[k] and not m.run.records(m.run.epoch + 1):
            scores.append(None)
            continue
        scores.append(m.run.task.finish(sums[k]))
        if m.run.cfg.optim.max_norm is not None:  # as Run.train_epoch reports it
            scores[k][rundir.MAX_NORM_COLUMN] = int(projected[k])
    return scores


def stacked_epoch(stack: StackedModel, optimizer: StackedOptimizer, task, train_set,
                  batch_size: int, shuffles: list[torch.Generator],
                  rows: list[torch.Tensor] | None = None,
                  data: MemberData | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One epoch of optimiser steps for every member: member k trains on the examples
    rows[k] of train_set (all of it when rows is None; the members' row sets have one size),
    in the order its own generator shuffles[k] draws (as its lone run's, on those rows); with
    `data` holding one bundle per member, on member k's own training set instead.
    Each member's gradient gets the gradient of its own declared L2 terms
    (stack.add_penalty_gradients), as its lone run's.
    Returns the (K, ...) on-device sums of task.step and the (K,) counts of weight vectors
    max-norm projected."""
    device = train_set.x.device
    if rows is None:
        rows = [None] * stack.size
    sizes = {len(train_set) if r is None else len(r) for r in rows}
    if len(sizes) != 1:
        raise ValueError(f"the members of one stack train on row sets of one size, got {sizes}")
    n = sizes.pop()
    orders = [batch_indices(n, batch_size, g) for g in shuffles]
    sums, projected = None, torch.zeros(stack.size, dtype=torch.long, device=device)
    for step in zip(*orders, strict=True):
        idx = torch.stack([i if r is None else r[i] for i, r in zip(step, rows, strict=True)])
        idx = idx.to(device)  # (K, B)
        noise = stack.draw_noise(idx.shape[1], train_set.x.dtype)
        if data is not None and not data.shared:
            x, y = data.gather("train", idx)
        else:
            x, y = train_set.x[idx], train_set.y[idx]
        loss, batch_sums = stack.task_step(task, x, y, True, noise)
        loss.sum().backward()  # each member's parameters get the gradient of its own loss
        stack.add_penalty_gradients()
        optimizer.step()
        step_projected = optimizer.apply_max_norm()
        if step_projected is not None:
            projected += step_projected
        sums = batch_sums.detach() if sums is None else sums + batch_sums.detach()
    return sums, projected


@torch.no_grad()
def evaluate(stack: StackedModel, task, split: str, data: MemberData | None = None,
             tasks: list | None = None) -> list[dict]:
    """Every member's scores on one split, eval mode: the same examples for all, or with
    `data` holding one bundle per member, each member's own; finished by `tasks` (each
    member's own), or by `task` for all."""
    shared = data is None or data.shared
    examples = (task.train_eval if split == "train_eval" else getattr(task.data, split)) \
        if shared else data.split(split)
    n = examples.x.shape[0] if shared else examples.x.shape[1]
    sums = None
    for i in range(0, n, CHUNK):
        if shared:
            x, y = examples.x[i : i + CHUNK], examples.y[i : i + CHUNK]
        else:
            x, y = examples.x[:, i : i + CHUNK], examples.y[:, i : i + CHUNK]
        part = stack.task_step(task, x, y, False, shared_batch=shared)[1]
        sums = part if sums is None else sums + part
    tasks = tasks or [task] * len(sums)
    return [t.finish(s) for t, s in zip(tasks, sums, strict=True)]


def train_alone(members: list[Member], reason: str) -> dict:
    """Train each member as a lone run, one after another (their models cannot stack:
    `reason`); returns {job num: JobReturn}. Each run starts from the streams its lone run has
    at that point, so it is the job run by the basic launcher."""
    results = {}
    for m in members:
        log.info("\t#%s : alone: %s", m.job.num, reason)
        with m.job.logging():
            set_rng_state(m.stream.rng)
            m.run.run_hooks = ALONE
            try:
                outcome = {"value": objective(fit(m.run))}
            except Exception as e:  # as Hydra's run_job: the job fails, the sweep goes on
                record_failure(m.run.dir, m.run.cfg, m.run.summary["overrides"], e)
                log.error("job #%s failed: %s", m.job.num, e)
                outcome = {"error": e}
        results[m.job.num] = m.job.end(**outcome)
    return results


def train_members(members: list[Member]) -> dict:
    """Train the members to their end; returns {job num: JobReturn}, each job ended (and the
    callbacks told) as soon as its member finishes."""
    reason = why_not_batched(members) if members else None
    if reason is not None:
        return train_alone(members, reason)
    results = {}
    for m in members:
        m.run.summary["batched_members"] = len(members)
        with m.job.logging():  # begin opens the loggers, which may warn
            m.run.begin()
    previous = sigterm_as_interrupt()
    try:
        active = finish_stopped(members, results)
        stack, optimizer = stack_members(active) if active else (None, None)
        data = MemberData([m.run.task for m in active])
        epoch = 0
        while active:
            start = time.perf_counter()
            scores = train_epoch(stack, optimizer, active, data)
            seconds = time.perf_counter() - start
            # an epoch a member's Run does not record (trainer.eval_every) only counts: no
            # scores, no copy of its weights, no files (Run.end_epoch skips it the same way)
            recorded = [s is not None for s in scores]
            evals = {}
            if any(recorded):
                tasks = [m.run.task for m in active]
                evals = {split: evaluate(stack, tasks[0], split, data, tasks)
                         for split in ("train_eval", "val")}
            for k, m in enumerate(active):
                if not recorded[k]:
                    m.run.count_epoch(seconds)
                    continue
                m.take(stack, optimizer, k)
                m.scores.give({split: evals[split][k] for split in evals})
                with m.job.logging(console=False):
                    try:
                        m.run.end_epoch(scores[k], seconds)
                    except DropbenchError as e:  # diverged: the others go on
                        m.failed = e
            epoch += 1
            if any(recorded):
                log.info("batch of %d: epoch %d in %.1f s", len(active), epoch,
                         time.perf_counter() - start)
            still = finish_stopped(active, results)
            if still and len(still) < len(active):  # the stopped leave: a stack without them
                for k, m in enumerate(active):  # the rebuilt stack starts from their models
                    if m in still and not recorded[k]:
                        m.take(stack, optimizer, k)
                stack, optimizer = stack_members(still)
                data = MemberData([m.run.task for m in still])
            active = still
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
                # the final scores draw from the streams where its lone run's training left
                # them (the MC passes of a regression): the member's own
                set_rng_state(m.stream.state())
                summary = m.run.finish(stopped_early=m.run.epoch < m.run.epochs)
                outcome = {"value": objective(summary)}
            except DropbenchError as e:
                log.error("job #%s failed: %s", m.job.num, e)
                outcome = {"error": e}
            finally:  # its loggers' sinks, as engine.fit closes them
                m.run.close_loggers()
        results[m.job.num] = m.job.end(**outcome)
    return still
