"""Where a training step of the benchmark's MNIST MLP spends its time: torch.profiler over
dropbench's real training loop (`Run.train_epoch`) on the bench's synthetic MNIST files.
The profile quoted in docs/benchmarks.md comes from this script.

    python scripts/profile_mlp.py [--steps 100] [--threads 2] [overrides, e.g. dropout=none]
"""

import argparse
import tempfile
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from dropbench.bench.common import Settings, head, trainer_epoch
from dropbench.bench.vision import BATCH, MNIST_TRAIN, mnist_mlp_config, write_random_mnist
from dropbench.data import load_data
from dropbench.engine.accel import keep_freed_memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rows", type=int, default=20, help="ops listed")
    args, overrides = parser.parse_known_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    keep_freed_memory()
    with tempfile.TemporaryDirectory() as tmp:
        s = Settings(torch.device("cpu"), Path(tmp))
        write_random_mnist(s.workdir / "data", MNIST_TRAIN)
        dropout = overrides or ["dropout=standard", "dropout.p=0.5", "dropout.p_input=0.2"]
        cfg = mnist_mlp_config(s, MNIST_TRAIN, dropout)
        data = head(load_data(cfg.dataset, cfg.data_dir, s.device), args.steps * BATCH)
        run, warm = trainer_epoch(s, cfg, data, 10 * BATCH)()
        warm()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            run()
    print(f"{args.steps} steps, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
