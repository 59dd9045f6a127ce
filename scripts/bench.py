"""Benchmark suite: dropbench's training loop vs. plain PyTorch reference loops and vs. the
matrix-multiply limit (the same code as `dropbench bench`; see docs/benchmarks.md).

    python scripts/bench.py                      # every case, CPU, about 6 minutes on 2 cores
    python scripts/bench.py --cases mlp --reps 5
    python scripts/bench.py --device cuda        # bf16 autocast; add --compile for torch.compile
"""

import sys

from dropbench.cli import bench_command

if __name__ == "__main__":
    bench_command(sys.argv[1:])
