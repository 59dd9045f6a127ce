"""Cases 1-3: the MNIST MLP against the reference loops and the matmul limit, the cost of each
dense dropout scheme, and the CIFAR-10 conv net with the conv-layer schemes.

MNIST comes from IDX files of random pixels written into the bench's temporary data dir, read
by dropbench's real loader and by torchvision's MNIST class for the reference: the same files,
the same shapes, no download.
"""


import numpy as np
import torch

from dropbench.bench.common import (
    Settings,
    compose,
    head,
    measure_entries,
    missing,
    trainer_epoch,
)
from dropbench.bench.harness import Ratio, Row, measure_all, unavailable
from dropbench.bench.limits import mlp_step_products
from dropbench.bench.reference import (
    mnist_loader,
    mnist_reference_epoch,
    naive_tensor_epoch,
    reference_mlp,
)
from dropbench.data import ClassificationData, Split, load_data
from dropbench.data.idx import write_idx
from dropbench.dropout import SCHEMES

MNIST_TRAIN = 60000  # one full epoch at scale 1
BATCH = 128
MLP_SIZES = [784, 1024, 1024, 10]
MLP_OVERRIDES = ["dataset=mnist", "dataset.download=false", "model=mlp",
                 "model.hidden=[1024,1024]", "optim=sgd", "optim.lr=0.01", "optim.momentum=0.9",
                 f"trainer.batch_size={BATCH}"]
# The targets: scheme step time / no-dropout step time.
SCHEME_TARGETS = {"standard": 1.10, "classic": 1.10, "gaussian": 1.10, "alpha": 1.10,
                  "dropconnect": 1.5}
CNN_SCHEMES = {"none": None, "standard": None, "spatial": 1.10, "dropblock": 1.3}


def write_random_mnist(root, n_train: int, n_test: int = 100) -> None:
    rng = np.random.default_rng(0)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n))


def mnist_mlp_config(s: Settings, n_train: int, dropout: list[str]):
    # dropbench carves a validation split off the training file, as on real MNIST (1/6).
    return compose(s, [*MLP_OVERRIDES, f"dataset.val_size={max(1, n_train // 6)}", *dropout])


def mlp_reference(s: Settings, data, warm: int, on_tensors: bool):
    """prepare() for the examples/mnist loop (on_tensors=False) or the naive loop over
    dropbench's in-memory tensors (True); the same model, dropout and SGD settings."""

    def prepare():
        torch.manual_seed(0)
        model = reference_mlp().to(s.device)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        if on_tensors:
            x, y = data.train.x, data.train.y
            return (lambda: naive_tensor_epoch(model, x, y, BATCH, opt, s.autocast()),
                    lambda: naive_tensor_epoch(model, x[:warm], y[:warm], BATCH, opt,
                                               s.autocast()))
        root = str(s.workdir / "data")
        loader = mnist_loader(root, BATCH, s.device)
        warm_loader = mnist_loader(root, BATCH, s.device, limit=warm)
        return (lambda: mnist_reference_epoch(model, loader, opt, s.device, s.autocast()),
                lambda: mnist_reference_epoch(model, warm_loader, opt, s.device, s.autocast()))

    return prepare


def mlp_limit(s: Settings, steps: int, dtype):
    """prepare() for the matmul limit: `steps` steps' products; warm-up: 20 steps."""

    def prepare():
        step = mlp_step_products(MLP_SIZES, BATCH, s.device, dtype)

        def epoch():
            for _ in range(steps):
                step()

        return epoch, lambda: [step() for _ in range(20)]

    return prepare


def mlp_case(s: Settings):
    """Case 1: one epoch of the MNIST MLP, dropout 0.2 (input) / 0.5 (hidden)."""
    n = s.amount(MNIST_TRAIN, minimum=4 * BATCH)
    write_random_mnist(s.workdir / "data", n)
    cfg = mnist_mlp_config(s, n, ["dropout=standard", "dropout.p=0.5", "dropout.p_input=0.2"])
    data = load_data(cfg.dataset, cfg.data_dir, s.device)
    n_dropbench = len(data.train)
    warm = min(20 * BATCH, n_dropbench)
    steps = -(-n_dropbench // BATCH)
    dtype = s.matmul_dtype()
    variants = [
        (Row("mlp", "dropbench trainer", "samples", n_dropbench),
         trainer_epoch(s, cfg, data, warm)),
        (Row("mlp", "reference: examples/mnist (PIL + DataLoader)", "samples", n),
         mlp_reference(s, data, warm, on_tensors=False)),
        (Row("mlp", "reference: naive in-memory loop", "samples", n_dropbench),
         mlp_reference(s, data, warm, on_tensors=True)),
        (Row("mlp", "matmul limit (fwd + both bwd products)", "samples", steps * BATCH,
             note=str(dtype).replace("torch.", "")), mlp_limit(s, steps, dtype)),
    ]
    rows = measure_all(variants, s.device, s.warmup, s.reps)
    d, ref, naive, lim = (r.key for r in rows)
    ratios = [Ratio("MLP: dropbench speed / examples-style reference", d, ref, ">=", 3.0),
              Ratio("MLP: dropbench speed / matmul limit", d, lim, ">=", 0.85),
              # The most any loop could reach against the reference on this machine.
              Ratio("MLP: matmul limit speed / examples-style reference", lim, ref, None, None),
              Ratio("MLP: naive in-memory loop speed / examples-style reference", naive, ref,
                    None, None),
              Ratio("MLP: dropbench speed / naive in-memory loop", d, naive, None, None)]
    return rows, ratios


def scheme_overrides(name: str) -> list[str]:
    """p=0.5 on the hidden layers and 0.2 on the input, where the scheme has those places
    (DropConnect has no input rate; `none` no rates at all)."""
    keys = SCHEMES[name].keys if name in SCHEMES and name != "none" else []
    rates = {"p": 0.5, "p_input": 0.2}
    return [f"dropout={name}", *(f"dropout.{k}={v}" for k, v in rates.items() if k in keys)]


def scheme_case(s: Settings):
    """Case 2: time of a partial MLP epoch with each dense scheme vs. no dropout."""
    n_steps = max(2, round(80 * s.scale))  # 10240 samples at scale 1
    n_file = s.amount(MNIST_TRAIN, minimum=4 * BATCH)
    if not (s.workdir / "data" / "MNIST").exists():
        write_random_mnist(s.workdir / "data", n_file)
    dense = [name for name, sch in SCHEMES.items() if "dense" in sch.kinds and name != "none"]
    names = ["none", *dense, *(n for n in SCHEME_TARGETS if n not in dense)]
    # (label, overrides, training examples timed, batch size)
    variants = [(n, scheme_overrides(n), n_steps * BATCH, BATCH) for n in names]
    # The paper's DropConnect: a weight mask per example, B times the work: one step only
    # (and a smaller batch when the whole bench is scaled down, as in the tests).
    per_example_batch = min(BATCH, s.amount(BATCH, minimum=8))
    variants.append(("dropconnect (per example)", [
        "dropout=dropconnect", "dropout.p=0.5", "dropout.per_example=true",
        f"trainer.batch_size={per_example_batch}"], per_example_batch, per_example_batch))
    entries = []
    data = None
    for label, overrides, samples, batch in variants:
        why = missing(schemes=[label.split()[0]])
        if why:
            entries.append(unavailable("schemes", label, "samples", why))
            continue
        cfg = mnist_mlp_config(s, n_file, overrides)
        if data is None:
            data = load_data(cfg.dataset, cfg.data_dir, s.device)
        entries.append((Row("schemes", label, "samples", samples),
                        trainer_epoch(s, cfg, head(data, samples), batch)))
    rows = measure_entries(entries, s)
    base = rows[0].key
    ratios = [Ratio(f"scheme time / no dropout: {r.name}", base, r.key,
                    "<=" if r.name in SCHEME_TARGETS else None, SCHEME_TARGETS.get(r.name))
              for r in rows[1:]]
    return rows, ratios


def synthetic_cifar10(n: int, device, augment: bool = False) -> ClassificationData:
    """Normalised (N, 3, 32, 32) noise and random labels, laid out as load_cifar10 lays out
    real images (channels_last on CUDA); augment: random crops and flips per batch."""
    from dropbench.data.augment import random_crop_flip

    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, 32, 32, generator=g).to(device)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    split = Split(x, torch.randint(0, 10, (n,), generator=g).to(device))
    return ClassificationData(split, split.head(BATCH), split.head(BATCH), (3, 32, 32), 10,
                              augment=random_crop_flip if augment else None)


def cnn_case(s: Settings):
    """Case 3: the Srivastava et al. CIFAR-10 net (model=alexnet), dropout after every conv
    block and FC layer at rate 0.1, no augmentation."""
    n = max(2, round(4 * s.scale)) * BATCH
    data = synthetic_cifar10(n, s.device)
    entries = []
    for name in CNN_SCHEMES:
        why = missing(schemes=[name], models=["alexnet"])
        if why:
            entries.append(unavailable("cnn", name, "samples", why))
            continue
        cfg = compose(s, ["dataset=cifar10", "model=alexnet", f"dropout={name}", "dropout.p=0.1",
                          "dropout.where=all", "dropout.p_input=0.0", "dropout.ramp_epochs=0",
                          "optim=sgd", "optim.lr=0.01", "optim.momentum=0.9",
                          f"trainer.batch_size={BATCH}"])
        entries.append((Row("cnn", name, "samples", n), trainer_epoch(s, cfg, data, BATCH)))
    rows = measure_entries(entries, s)
    base = rows[0].key
    ratios = [Ratio(f"CNN time / no dropout: {r.name}", base, r.key,
                    "<=" if CNN_SCHEMES[r.name] else None, CNN_SCHEMES[r.name])
              for r in rows[1:]]
    return rows, ratios
