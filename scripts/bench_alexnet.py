"""Training throughput of the Srivastava et al. 2014 CIFAR-10 net (`model=alexnet`) through
dropbench's own training loop, on synthetic CIFAR-shaped data (no download needed).

    python scripts/bench_alexnet.py                       # one full epoch: 45000 images
    python scripts/bench_alexnet.py --n 2048              # a partial epoch (slow CPUs)
    python scripts/bench_alexnet.py --device cuda --amp bf16 --compile

Extra arguments are Hydra overrides (default preset: +experiment=srivastava_cifar10_all).
A short warm-up epoch (2 batches; where torch.compile does its work) runs before the timed
one. Prints one line: device, settings, seconds and samples/s.
"""

import argparse
import os
import platform
import tempfile
import time

import torch
from hydra import compose, initialize_config_dir

from dropbench.config import config_dir, register_schemas, validate
from dropbench.data import ClassificationData, Split
from dropbench.data.augment import random_crop_flip
from dropbench.engine.tasks import ClassificationTask
from dropbench.engine.trainer import Run
from dropbench.models import build_model


def synthetic_cifar10(n: int, device: torch.device, augment: bool) -> ClassificationData:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, 32, 32, generator=g).to(device)  # already "normalised"
    if device.type == "cuda":  # as load_cifar10 lays it out
        x = x.contiguous(memory_format=torch.channels_last)
    split = Split(x, torch.randint(0, 10, (n,), generator=g).to(device))
    return ClassificationData(split, split.head(256), split.head(256), (3, 32, 32), 10,
                              augment=random_crop_flip if augment else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=45000, help="training images in the epoch")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--amp", default="off", choices=["off", "bf16", "fp16"])
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--augment", action="store_true", help="random crops and flips")
    args, overrides = parser.parse_known_args()

    register_schemas()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("config", overrides=[
            "+experiment=srivastava_cifar10_all", f"trainer.batch_size={args.batch_size}",
            f"trainer.amp={args.amp}", f"trainer.compile={args.compile}",
            "trainer.progress=false", *overrides])
    validate(cfg)
    device = torch.device(args.device)
    torch.manual_seed(0)
    data = synthetic_cifar10(args.n, device, args.augment)
    model = build_model(cfg.model, cfg.dropout, data).to(device)
    with tempfile.TemporaryDirectory() as tmp:
        run = Run(cfg, tmp, ClassificationTask(data, args.batch_size, 256), model, device)
        timed_task = run.task
        warm = ClassificationData(data.train.head(2 * args.batch_size), data.val, data.test,
                                  data.input_shape, 10, augment=data.augment)
        run.task = ClassificationTask(warm, args.batch_size, 256)
        run.train_epoch()  # warm-up: kernel selection, torch.compile
        run.task = timed_task
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        scores = run.train_epoch()  # ends in .tolist(): waits for the device
        seconds = time.perf_counter() - start

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    load = f"load avg {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    print(f"alexnet train epoch: {args.n} images, batch {args.batch_size}, device {device} "
          f"({name or platform.machine()}, {torch.get_num_threads()} threads, {load}), "
          f"amp={args.amp} compile={args.compile} augment={args.augment}, torch "
          f"{torch.__version__}: {seconds:.1f} s, {args.n / seconds:.0f} samples/s "
          f"(loss {scores['loss']:.3f})")


if __name__ == "__main__":
    main()
