"""The cost of per-example DropConnect masks (`dropout.per_example=true`) vs one mask per batch.

Times forward + backward of one DropConnect layer in training mode (median of --repeats, after
two warm-up steps): on the CPU the process's CPU time, which other jobs on a shared machine
disturb less than the wall clock; on CUDA the wall clock around synchronised steps. Linear
layers are timed three ways: one mask per batch, one mask per example through the layer
(masked_linear.py's chunked product), and one mask per example the plain way
(`reference_per_example_linear`: (B, out, in) masked weights kept by autograd), so the two
per-example formulations are compared side by side. Usage:
    OMP_NUM_THREADS=1 python scripts/bench_dropconnect.py [--device cpu|cuda] [--repeats 5]
The output measured on the development machine is in docs/schemes.md.
"""

import argparse
import time

import torch

from dropbench.bench.harness import sync
from dropbench.dropout.dropconnect import DropConnectConv2d, DropConnectLinear
from dropbench.dropout.masked_linear import reference_per_example_linear

LINEAR = {  # name -> (in, out, batch)
    "linear 512->512, batch 64": (512, 512, 64),
    "linear 512->512, batch 256": (512, 512, 256),
    "linear 784->1024, batch 128": (784, 1024, 128),
}
CONV = {"conv 32->64 3x3, batch 64, 16x16": (64, 32, 16, 16)}


def median_seconds(step, repeats: int, device: str) -> float:
    clock = time.perf_counter if device == "cuda" else time.process_time
    times = []
    for _ in range(repeats + 2):  # the first two warm up
        sync(torch.device(device))
        start = clock()
        step()
        sync(torch.device(device))
        times.append(clock() - start)
    return sorted(times[2:])[len(times[2:]) // 2]


def linear_times(n_in: int, n_out: int, batch: int, repeats: int, device: str) -> list[float]:
    x = torch.randn(batch, n_in, device=device)
    layers = [DropConnectLinear(n_in, n_out, 0.5, per_example).to(device).train()
              for per_example in (False, True)]
    plain = layers[1]
    steps = [lambda layer=layer: layer(x).sum().backward() for layer in layers]
    steps.append(lambda: reference_per_example_linear(x, plain.weight, plain.bias, 0.5)
                 .sum().backward())
    return [median_seconds(step, repeats, device) for step in steps]


def conv_times(shape, repeats: int, device: str) -> list[float]:
    x = torch.randn(shape, device=device)
    layers = [DropConnectConv2d(32, 64, 3, 0.5, per_example, padding=1).to(device).train()
              for per_example in (False, True)]
    return [median_seconds(lambda layer=layer: layer(x).sum().backward(), repeats, device)
            for layer in layers]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    clock = "wall" if args.device == "cuda" else "cpu"
    print(f"device={args.device} torch={torch.__version__} threads={torch.get_num_threads()} "
          f"clock={clock} (median of {args.repeats})")
    print(f"{'case':<30} {'per batch':>10} {'per example':>12} {'ratio':>7} "
          f"{'plain per ex.':>14} {'ratio':>7} {'plain/new':>9}")
    for name, (n_in, n_out, batch) in LINEAR.items():
        batch_s, example_s, plain_s = linear_times(n_in, n_out, batch, args.repeats, args.device)
        print(f"{name:<30} {batch_s * 1e3:>8.2f}ms {example_s * 1e3:>10.2f}ms "
              f"{example_s / batch_s:>6.1f}x {plain_s * 1e3:>12.2f}ms "
              f"{plain_s / batch_s:>6.1f}x {plain_s / example_s:>8.1f}x")
    for name, shape in CONV.items():
        batch_s, example_s = conv_times(shape, args.repeats, args.device)
        print(f"{name:<30} {batch_s * 1e3:>8.2f}ms {example_s * 1e3:>10.2f}ms "
              f"{example_s / batch_s:>6.1f}x {'(grouped convolution)':>14}")


if __name__ == "__main__":
    main()
