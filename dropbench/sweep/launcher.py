"""`hydra/launcher=batched`: the jobs of a sweep that can share one stacked model train
together (dropbench/sweep/plan.py says which, batch.py trains them); every other job runs
one by one, as Hydra's basic launcher runs it, after a one-line note saying why."""

import copy
import logging
from pathlib import Path

from hydra.core.utils import configure_log, filter_overrides, run_job, setup_globals
from omegaconf import open_dict

from dropbench.sweep.plan import plan

log = logging.getLogger("dropbench.sweep")


class ValidatedConfigs:
    """Hydra's sweepers compose every job's config to validate a batch
    (Sweeper.validate_batch_is_legal) and then hand the same overrides to the launcher, which
    would compose each one again (about a tenth of a second per job on the CPU of
    docs/benchmarks.md). Installed on the shared config loader, this keeps what the
    validation composed, and `take` hands each config to the launcher once; a config nobody
    validated is composed as usual."""

    def __init__(self, config_loader):
        self.compose = config_loader.load_sweep_config
        self.kept: dict = {}
        config_loader.load_sweep_config = self  # the instance's method, for the sweeper

    def __call__(self, master_config, sweep_overrides):
        config = self.compose(master_config, sweep_overrides)
        self.kept[(id(master_config), tuple(sweep_overrides))] = config
        return config

    def take(self, master_config, overrides) -> object:
        config = self.kept.pop((id(master_config), tuple(overrides)), None)
        return config if config is not None else self.compose(master_config, list(overrides))


def launch(hydra_context, task_function, config, max_batch: int, job_overrides,
           initial_job_idx: int, validated: ValidatedConfigs) -> list:
    setup_globals()
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    Path(str(config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    configs = []
    for i, overrides in enumerate(job_overrides):
        sweep_config = validated.take(config, overrides)
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = sweep_config.hydra.job.num = initial_job_idx + i
        configs.append(sweep_config)
    units = plan([task_config(c) for c in configs], max_batch,
                 chdir=bool(config.hydra.job.chdir))
    batched = sum(len(u.jobs) for u in units if u.batched)
    stacks = sum(u.batched for u in units)
    log.info("Launching %d jobs: %d in %d stacked batch%s, %d one by one", len(configs),
             batched, stacks, "" if stacks == 1 else "es", len(configs) - batched)
    results = {}
    for unit in units:
        for i in unit.jobs:
            overrides = " ".join(filter_overrides(job_overrides[i]))
            note = f" (alone: {unit.alone_because})" if unit.alone_because else ""
            log.info("\t#%d : %s%s", initial_job_idx + i, overrides, note)
        if unit.batched:
            results.update(run_batch(hydra_context, task_function, configs, unit.jobs))
        else:
            i = unit.jobs[0]
            results[i] = run_job(hydra_context=hydra_context, task_function=task_function,
                                 config=configs[i], job_dir_key="hydra.sweep.dir",
                                 job_subdir_key="hydra.sweep.subdir")
        configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    return [results[i] for i in range(len(configs))]


def run_batch(hydra_context, task_function, configs, indices) -> dict:
    """Train the jobs `indices` as one batch; returns {index: JobReturn}."""
    from dropbench.sweep.batch import prepare_members, train_members
    from dropbench.sweep.jobs import MemberJob

    jobs = {i: MemberJob(hydra_context, task_function, configs[i]) for i in indices}
    members, done = prepare_members(list(jobs.values()))
    try:
        done.update(train_members(members))
    except Exception as e:  # a fault in the shared model ends every member: record each
        done.update(fail_members(members, e))
    return {i: done[job.num] for i, job in jobs.items()}


def fail_members(members, error: Exception) -> dict:
    """{job num: JobReturn} after an error that stopped the batch: members still training
    fail with it (summary.json says so); those that had ended keep their own end."""
    from dropbench.engine import record_failure
    from dropbench.rundir import objective

    returns = {}
    for m in members:
        run = m.run
        if run.summary["status"] == "running":
            record_failure(run.dir, run.cfg, run.summary["overrides"], error)
            returns[m.job.num] = m.job.end(error=error)
        elif m.failed is not None:  # diverged before: its JobReturn went with the batch's
            returns[m.job.num] = m.job.end(error=m.failed)
        else:  # completed before: its JobReturn, made again from its summary
            returns[m.job.num] = m.job.end(objective(run.summary))
    return returns


def task_config(config):
    """The task's part of a job config (everything but hydra), for planning."""
    task = copy.deepcopy(config)
    with open_dict(task):
        del task["hydra"]
    return task
