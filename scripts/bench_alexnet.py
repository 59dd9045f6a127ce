"""Training throughput of the Srivastava et al. 2014 CIFAR-10 net (`model=alexnet`) through
dropbench's own training loop, on synthetic CIFAR-shaped data (no download needed): the
`dropbench bench --cases cnn` machinery for a whole epoch with the preset's settings.

    python scripts/bench_alexnet.py                       # one full epoch: 45000 images
    python scripts/bench_alexnet.py --n 2048              # a partial epoch (slow CPUs)
    python scripts/bench_alexnet.py --device cuda --amp bf16 --compile

Extra arguments are Hydra overrides (default preset: +experiment=srivastava_cifar10_all).
A short warm-up pass (2 batches; where torch.compile does its work) runs before the timed
epoch. Prints one line: device, settings, seconds and samples/s.
"""

import argparse
import tempfile
from pathlib import Path

import torch

from dropbench.bench import harness
from dropbench.bench.common import Settings, compose, trainer_epoch
from dropbench.bench.vision import synthetic_cifar10
from dropbench.engine.accel import default_threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=45000, help="training images in the epoch")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--amp", default="off", choices=["off", "bf16", "fp16"])
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--augment", action="store_true", help="random crops and flips")
    args, overrides = parser.parse_known_args()
    device = torch.device(args.device)
    torch.set_num_threads(default_threads())  # as `dropbench train` and `dropbench bench`
    with tempfile.TemporaryDirectory() as tmp:
        s = Settings(device, Path(tmp), reps=1, warmup=1, amp=args.amp, compile=args.compile)
        cfg = compose(s, ["+experiment=srivastava_cifar10_all",
                          f"trainer.batch_size={args.batch_size}", *overrides])
        data = synthetic_cifar10(args.n, device, args.augment)
        row = harness.Row("cnn", "alexnet epoch", "samples", args.n)
        harness.measure_all([(row, trainer_epoch(s, cfg, data, 2 * args.batch_size))],
                            device, s.warmup, s.reps)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else harness.cpu_model()
    print(f"alexnet train epoch: {args.n} images, batch {args.batch_size}, device {device} "
          f"({where}, {torch.get_num_threads()} threads, load avg {harness.load_average()}), "
          f"amp={args.amp} compile={args.compile} augment={args.augment}, torch "
          f"{torch.__version__}: {row.median:.1f} s, {row.rate:.0f} samples/s")


if __name__ == "__main__":
    main()
