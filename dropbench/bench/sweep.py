"""Case `sweep`: the 12-job MNIST-shaped MLP sweep (dropout.p in 0, .25, .5, .75 x seeds 0-2)
run by `dropbench train -m` with the batched launcher and with Hydra's basic launcher.

Both are whole sweeps as a user runs them (a fresh process each: startup, data loading, every
job's run dir, evaluation, checkpoints and test pass), on IDX files of random MNIST-shaped
pixels in the bench's temporary data dir: 1 epoch over 10,000 training images (scaled with
--scale), validation and test 2,000 each, the default MLP (784-512-512-10, batch 64, SGD
lr 0.05 momentum 0.9). Rows: wall seconds and CPU seconds per sweep; work = samples trained
(12 x training images). The check compares the two launchers' results job by job.
"""

import json
import os
import sys

from dropbench.bench.common import Settings
from dropbench.bench.harness import Check, Ratio, Row, rotated, run_timed
from dropbench.bench.vision import write_random_mnist

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


def sweep_case(s: Settings):
    n_train = s.amount(TRAIN, minimum=256)
    write_random_mnist(s.workdir / "sweep-data", n_train + HELD_OUT, HELD_OUT)
    work = n_train * len(RATES) * len(SEEDS)
    wall = {n: Row("sweep", f"12 jobs, {n} launcher", "samples", work) for n in LAUNCHERS}
    cpu = {n: Row("sweep", f"12 jobs, {n} launcher, CPU time", "samples", work)
           for n in LAUNCHERS}
    cli = [sys.executable, "-m", "dropbench.cli", "train", "-m", *sweep_args(s, n_train)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    worst = 0.0
    for r in range(max(1, s.reps)):
        for name in rotated(list(LAUNCHERS), r):
            out = s.workdir / f"sweep-{name}-{r}"
            seconds, cpu_seconds = run_timed([*cli, LAUNCHERS[name], f"hydra.sweep.dir={out}"],
                                             cwd=s.workdir, env=env)
            wall[name].seconds.append(seconds)
            cpu[name].seconds.append(cpu_seconds)
        pairs = zip(results(s.workdir / f"sweep-batched-{r}"),
                    results(s.workdir / f"sweep-basic-{r}"), strict=True)
        worst = max([worst, *(abs(b["best_val_loss"] - a["best_val_loss"]) for b, a in pairs)])
    rows = [wall["batched"], wall["basic"], cpu["batched"], cpu["basic"]]
    return rows, [
        Ratio("sweep: batched launcher speed / basic launcher (wall)", wall["batched"].key,
              wall["basic"].key, ">=", TARGET),
        Ratio("sweep: batched launcher speed / basic launcher (CPU time)", cpu["batched"].key,
              cpu["basic"].key, None, None),
        Check("sweep: largest difference in best val loss, batched vs basic", "<=", 1e-3,
              value=worst),
    ]
