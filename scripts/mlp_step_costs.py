"""What one training step of the benchmark's MNIST MLP (784-1024-1024-10, batch 128) costs
beyond its matrix products: CPU time per step of the products alone (bench/limits.py), of a
plain step without dropout, and of the same step with dropbench's standard dropout (0.2 on
the input, 0.5 after each hidden layer). docs/benchmarks.md quotes its output.

    python scripts/mlp_step_costs.py [--threads 1] [--steps 30] [--rounds 5]
"""

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

from dropbench.bench.limits import mlp_step_products
from dropbench.dropout.standard import bernoulli_dropout
from dropbench.engine.accel import keep_freed_memory

SIZES, BATCH = [784, 1024, 1024, 10], 128


def step(dropout: bool):
    """A plain SGD step (momentum 0.9, fused) of the MLP, with or without dropout."""
    layers = [nn.Linear(i, o) for i, o in zip(SIZES[:-1], SIZES[1:], strict=True)]
    params = [p for m in layers for p in m.parameters()]
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9, fused=True)
    x, y = torch.randn(BATCH, SIZES[0]), torch.randint(0, SIZES[-1], (BATCH,))
    drop = bernoulli_dropout if dropout else (lambda h, p: h)

    def run():
        h = drop(x, 0.2)
        for i, layer in enumerate(layers):
            h = layer(h)
            if i < len(layers) - 1:
                h = drop(F.relu(h), 0.5)
        opt.zero_grad()
        F.cross_entropy(h, y).backward()
        opt.step()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=30, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (the minimum is shown)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory()
    torch.manual_seed(0)
    variants = {"matrix products only": mlp_step_products(SIZES, BATCH, "cpu"),
                "step without dropout": step(dropout=False),
                "step with standard dropout": step(dropout=True)}
    for run in variants.values():  # warm-up: kernels, allocator
        for _ in range(10):
            run()
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(args.rounds):  # interleaved, so a change of load hits every variant
        for name, run in variants.items():
            start = time.process_time()
            for _ in range(args.steps):
                run()
            best[name] = min(best[name], (time.process_time() - start) / args.steps * 1e3)
    print(f"{args.threads} thread(s), torch {torch.__version__}: CPU ms per step "
          f"(minimum of {args.rounds} rounds of {args.steps} steps)")
    for name, ms in best.items():
        print(f"  {name:<28} {ms:6.2f}")


if __name__ == "__main__":
    main()
