"""The cost of per-example DropConnect masks (`dropout.per_example=true`) vs one mask per batch.

Times forward + backward of one DropConnect layer in training mode, and counts the mask
elements each variant draws. Usage:
    python scripts/bench_dropconnect.py [--device cpu|cuda] [--repeats 20]
The output measured on the development machine is in docs/schemes.md.
"""

import argparse
import time

import torch

from dropbench.bench.harness import sync
from dropbench.dropout.dropconnect import DropConnectConv2d, DropConnectLinear

CASES = {  # name -> (layer factory, input shape)
    "linear 512->512, batch 64": (lambda pe: DropConnectLinear(512, 512, 0.5, pe), (64, 512)),
    "linear 512->512, batch 256": (lambda pe: DropConnectLinear(512, 512, 0.5, pe), (256, 512)),
    "conv 32->64 3x3, batch 64, 16x16": (
        lambda pe: DropConnectConv2d(32, 64, 3, 0.5, pe, padding=1), (64, 32, 16, 16)),
}


def time_step(layer, x, repeats: int) -> float:
    """Median seconds of forward + backward."""
    times = []
    for _ in range(repeats + 2):  # the first two warm up
        sync(x.device)
        start = time.perf_counter()
        layer(x).sum().backward()
        sync(x.device)
        times.append(time.perf_counter() - start)
    return sorted(times[2:])[len(times[2:]) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"device={args.device} torch={torch.__version__} threads={torch.get_num_threads()}")
    print(f"{'case':<34} {'per batch':>12} {'per example':>12} {'ratio':>7}  mask elements")
    for name, (make, shape) in CASES.items():
        x = torch.randn(shape, device=args.device)
        seconds = {}
        for per_example in (False, True):
            layer = make(per_example).to(args.device).train()
            seconds[per_example] = time_step(layer, x, args.repeats)
        mask = layer.weight.numel()
        print(f"{name:<34} {seconds[False] * 1e3:>10.2f}ms {seconds[True] * 1e3:>10.2f}ms "
              f"{seconds[True] / seconds[False]:>6.1f}x  {mask:,} vs {mask * shape[0]:,}")


if __name__ == "__main__":
    main()
