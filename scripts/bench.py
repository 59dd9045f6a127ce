"""Benchmark suite: dropbench's training loop vs. plain PyTorch reference loops and vs. the
matrix-multiply limit (the same code as `dropbench bench`; see docs/benchmarks.md).

    python scripts/bench.py                      # every case, CPU, ~10 minutes on 2 cores
    python scripts/bench.py --cases mlp --reps 5
    python scripts/bench.py --device cuda        # bf16 autocast; add --compile for torch.compile
"""

from dropbench.bench import main

if __name__ == "__main__":
    main()
