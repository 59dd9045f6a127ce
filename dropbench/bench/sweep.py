"""Cases `sweep` and `sweep_cnn`: a 12-job sweep (dropout.p in 0, .25, .5, .75 x seeds 0-2) run
by `dropbench train -m` with the batched launcher and with Hydra's basic launcher: `sweep` the
MNIST-shaped MLP, `sweep_cnn` LeNet on the 8x8 digits (below).

Both are whole sweeps as a user runs them (a fresh process each: startup, data loading, every
job's run dir, evaluation, checkpoints and test pass), on IDX files of random MNIST-shaped
pixels in the bench's temporary data dir: 1 epoch over 10,000 training images (scaled with
--scale), validation and test 2,000 each, the default MLP (784-512-512-10, batch 64, SGD
lr 0.01 momentum 0.9). Rows: wall seconds and CPU seconds per sweep; work = samples trained
(12 x training images). The check compares the two launchers' results job by job.

A second pair of rows times the training epochs alone, in this process: the 12 members'
epochs as one stacked model (dropbench/sweep/vmapped.py, the launcher's stack) and as 12 runs
of the trainer's epoch (`Run.train_epoch`) one after another, on the same data. Their ratio
is what stacking saves in the arithmetic itself; the launchers' ratio adds what it saves
around it (data loading, model building, evaluation passes).

`sweep_cnn`: model=lenet on the real digits (1197 training images after the validation and
test splits, with --scale a subset), standard dropout, 3 epochs; the launchers' rows, and
the training-only rows: the stack against 12 trainer epochs one after another.
"""

import json
import os
import sys

import torch

from dropbench.bench.common import Settings, compose, trainer_epoch
from dropbench.bench.harness import Check, Ratio, Row, measure_all, rotated, run_timed
from dropbench.bench.vision import write_random_mnist
from dropbench.models import build_model
from dropbench.rundir import BEST_VAL_LOSS

RATES, SEEDS = (0, 0.25, 0.5, 0.75), (0, 1, 2)
TRAIN, HELD_OUT = 10000, 2000
LAUNCHERS = {"batched": "hydra/launcher=batched", "basic": "hydra/launcher=basic"}
TARGET = 3.0  # batched >= 3x the basic launcher on the CPU (10x on a GPU)


def sweep_args(s: Settings, n_train: int) -> list[str]:
    return ["dataset=mnist", "dataset.download=false", f"dataset.val_size={HELD_OUT}",
            f"dataset.train_subset={n_train}", f"data_dir={s.workdir / 'sweep-data'}",
            f"device={s.device}", "trainer.epochs=1", "trainer.progress=false",
            "~hydra.callbacks.report", "dropout=standard",
            "dropout.p=" + ",".join(map(str, RATES)), "seed=" + ",".join(map(str, SEEDS))]


def results(sweep_dir) -> list[dict]:
    """Every job's summary.json, in the order of their sorted overrides (job dirs may be
    named by number or by overrides)."""
    found = [json.loads(p.read_text()) for p in sweep_dir.glob("*/summary.json")]
    return sorted(found, key=lambda s: sorted(s["overrides"]))


def stack_epochs(cfgs: list, data, warm_size: int):
    """prepare() for one epoch of every member in the stack the batched launcher
    trains (models, optimisers and dropout streams as the lone runs have them)."""
    from dropbench.engine.optim import build_optimizer
    from dropbench.engine.tasks import TASKS
    from dropbench.sweep.batch import stacked_epoch
    from dropbench.sweep.stacked_optim import StackedOptimizer
    from dropbench.sweep.vmapped import StackedModel

    def prepare():
        device = data.train.x.device
        models, optimizers, streams = [], [], []
        for cfg in cfgs:
            torch.manual_seed(cfg.seed)
            models.append(build_model(cfg.model, cfg.dropout, data).to(device))
            optimizers.append(build_optimizer(cfg.optim, models[-1]))
            streams.append(torch.Generator(device).manual_seed(cfg.seed))
        stack = StackedModel(models, streams, data.train.x[:1])
        optimizer = StackedOptimizer(stack.parameters(), optimizers,
                                     [c.optim.max_norm for c in cfgs], [],
                                     stack.transposed_indices())
        task, batch_size = TASKS[data.task](cfgs[0], data), cfgs[0].trainer.batch_size

        def epoch(train_set):
            shuffles = [torch.Generator().manual_seed(c.seed) for c in cfgs]
            stacked_epoch(stack, optimizer, task, train_set, batch_size, shuffles)

        return (lambda: epoch(data.train)), (lambda: epoch(data.train.head(warm_size)))

    return prepare


def member_configs(s: Settings, n_train: int) -> list:
    """The 12 jobs' configs, as `dropbench train` composes them."""
    shared = [a for a in sweep_args(s, n_train)
              if not a.startswith(("dropout.p=", "seed=", "~hydra", "data_dir=", "device="))]
    return [compose(s, [*shared, f"dropout.p={p}", f"seed={seed}"])
            for p in RATES for seed in SEEDS]


def one_after_another(s: Settings, cfgs: list, data, warm_size: int):
    """prepare() for the trainer's epoch of each member in turn."""

    def prepare():
        runs = [trainer_epoch(s, cfg, data, warm_size)() for cfg in cfgs]
        return (lambda: [run() for run, _ in runs]), (lambda: [warm() for _, warm in runs])

    return prepare


def training_only(s: Settings, n_train: int) -> tuple[list[Row], list[Ratio]]:
    from dropbench.data import load_data

    cfgs = member_configs(s, n_train)
    data = load_data(cfgs[0].dataset, s.workdir / "sweep-data", s.device)
    work = len(data.train) * len(cfgs)
    warm = min(640, len(data.train))
    rows = measure_all([
        (Row("sweep", "training only: 12 members stacked, one process", "samples", work),
         stack_epochs(cfgs, data, warm)),
        (Row("sweep", "training only: 12 trainer epochs one after another", "samples", work),
         one_after_another(s, cfgs, data, warm)),
    ], s.device, s.warmup, s.reps)
    return rows, [Ratio("sweep: training only, stacked speed / one after another",
                        rows[0].key, rows[1].key, None, None)]


def both_launchers(s: Settings, case: str, args: list[str], work: int):
    """The sweep `dropbench train -m ARGS` through each launcher, in interleaved rounds:
    ({launcher: wall Row}, {launcher: CPU-time Row}, the Check that their results agree)."""
    wall = {n: Row(case, f"12 jobs, {n} launcher", "samples", work) for n in LAUNCHERS}
    cpu = {n: Row(case, f"12 jobs, {n} launcher, CPU time", "samples", work)
           for n in LAUNCHERS}
    cli = [sys.executable, "-m", "dropbench.cli", "train", "-m", *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    worst = 0.0
    for r in range(max(1, s.reps)):
        for name in rotated(list(LAUNCHERS), r):
            out = s.workdir / f"{case}-{name}-{r}"
            seconds, cpu_seconds, _ = run_timed(
                [*cli, LAUNCHERS[name], f"hydra.sweep.dir={out}"], cwd=s.workdir, env=env)
            wall[name].seconds.append(seconds)
            cpu[name].seconds.append(cpu_seconds)
        pairs = zip(results(s.workdir / f"{case}-batched-{r}"),
                    results(s.workdir / f"{case}-basic-{r}"), strict=True)
        worst = max([worst, *(abs(b[BEST_VAL_LOSS] - a[BEST_VAL_LOSS]) for b, a in pairs)])
    agree = Check(f"{case}: largest difference in best val loss, batched vs basic", "<=", 1e-3,
                  value=worst)
    return wall, cpu, agree


def launcher_ratios(case: str, wall: dict, cpu: dict) -> list:
    return [Ratio(f"{case}: batched launcher speed / basic launcher (wall)", wall["batched"].key,
                  wall["basic"].key, ">=", TARGET),
            Ratio(f"{case}: batched launcher speed / basic launcher (CPU time)",
                  cpu["batched"].key, cpu["basic"].key, None, None)]


def sweep_case(s: Settings):
    n_train = s.amount(TRAIN, minimum=256)
    write_random_mnist(s.workdir / "sweep-data", n_train + HELD_OUT, HELD_OUT)
    work = n_train * len(RATES) * len(SEEDS)
    wall, cpu, agree = both_launchers(s, "sweep", sweep_args(s, n_train), work)
    training_rows, training_ratios = training_only(s, n_train)
    rows = [wall["batched"], wall["basic"], cpu["batched"], cpu["basic"], *training_rows]
    return rows, [*training_ratios, *launcher_ratios("sweep", wall, cpu), agree]


CNN_EPOCHS = 3
DIGITS_TRAIN = 1197  # 1797 digits less the validation and test splits (300 each)


def cnn_args(s: Settings, n_train: int) -> list[str]:
    return ["model=lenet", "dataset=digits", f"dataset.train_subset={n_train}",
            f"device={s.device}", f"trainer.epochs={CNN_EPOCHS}", "trainer.progress=false",
            "~hydra.callbacks.report", "dropout=standard",
            "dropout.p=" + ",".join(map(str, RATES)), "seed=" + ",".join(map(str, SEEDS))]


def sweep_cnn_case(s: Settings):
    from dropbench.data import load_data

    n_train = s.amount(DIGITS_TRAIN, minimum=64)
    work = n_train * CNN_EPOCHS * len(RATES) * len(SEEDS)
    wall, cpu, agree = both_launchers(s, "sweep_cnn", cnn_args(s, n_train), work)
    shared = [a for a in cnn_args(s, n_train)
              if not a.startswith(("dropout.p=", "seed=", "~hydra", "device="))]
    cfgs = [compose(s, [*shared, f"dropout.p={p}", f"seed={seed}"])
            for p in RATES for seed in SEEDS]
    data = load_data(cfgs[0].dataset, s.workdir / "data", s.device)
    one_epoch, warm = len(data.train) * len(cfgs), min(256, len(data.train))
    training = measure_all([
        (Row("sweep_cnn", "training only: 12 members stacked, one process", "samples",
             one_epoch), stack_epochs(cfgs, data, warm)),
        (Row("sweep_cnn", "training only: 12 trainer epochs one after another", "samples",
             one_epoch), one_after_another(s, cfgs, data, warm)),
    ], s.device, s.warmup, s.reps)
    rows = [wall["batched"], wall["basic"], cpu["batched"], cpu["basic"], *training]
    return rows, [Ratio("sweep_cnn: training only, stacked speed / one after another",
                        training[0].key, training[1].key, None, None),
                  *launcher_ratios("sweep_cnn", wall, cpu), agree]
