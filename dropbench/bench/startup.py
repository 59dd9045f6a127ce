"""Case `startup`: what the CLI costs before and after any training, next to `import torch`.

Each command runs as a fresh process, `reps` times in rotated order. Two rows per command:
wall seconds, and CPU seconds of the process (on a busy machine the wall time mostly
measures the other processes; the CPU time is what the command itself spends). For
`dropbench train` on digits (1 epoch) the training itself is taken out: the rows hold the
process's time minus the epoch time its summary.json reports (`wall_s`), i.e. Python,
imports, Hydra, loading digits, building the model, checkpoints and the test pass.
"""

import json
import os
import sys

from dropbench.bench.common import Settings
from dropbench.bench.harness import Check, Ratio, Row, rotated, run_timed

TORCH = "python -c 'import torch'"
TRAIN = "dropbench train (digits, 1 epoch), outside training"
# The targets: quick commands under 1 s; a run's time outside training <= 1.5x import torch.
QUICK_LIMIT_S = 1.0
TRAIN_OVERHEAD = 1.5


def commands(s: Settings) -> dict[str, list[str]]:
    cli = [sys.executable, "-m", "dropbench.cli"]
    run_dir = s.workdir / "startup-run"
    return {
        TORCH: [sys.executable, "-c", "import torch"],
        "dropbench --version": [*cli, "--version"],
        "dropbench list": [*cli, "list"],
        "dropbench train --help": [*cli, "train", "--help"],
        TRAIN: [*cli, "train", "trainer.epochs=1", "trainer.progress=false",
                "trainer.overwrite=true", f"data_dir={s.workdir / 'data'}",
                f"hydra.run.dir={run_dir}"],
    }


def training_seconds(s: Settings) -> float:
    return json.loads((s.workdir / "startup-run" / "summary.json").read_text())["wall_s"]


def startup_case(s: Settings):
    cmds = commands(s)
    wall = {name: Row("startup", name, "runs", 1) for name in cmds}
    cpu = {name: Row("startup", f"{name}, CPU time", "runs", 1) for name in cmds}
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for r in range(max(1, s.reps)):
        for name in rotated(list(cmds), r):
            seconds, cpu_seconds, _ = run_timed(cmds[name], cwd=s.workdir, env=env)
            trained = training_seconds(s) if name == TRAIN else 0.0
            wall[name].seconds.append(seconds - trained)
            cpu[name].seconds.append(cpu_seconds - trained)
    rows = [row for name in cmds for row in (wall[name], cpu[name])]
    targets = []
    for kind, table in (("wall", wall), ("CPU", cpu)):
        targets.append(Ratio(f"startup ({kind}): train outside training / import torch",
                             table[TORCH].key, table[TRAIN].key, "<=", TRAIN_OVERHEAD))
        for name in ("dropbench list", "dropbench train --help", "dropbench --version"):
            targets.append(Check(f"startup ({kind}): {name}, median seconds", "<=",
                                 QUICK_LIMIT_S, row=table[name].key))
    return rows, targets
