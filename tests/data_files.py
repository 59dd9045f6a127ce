"""Write small datasets in their real on-disk formats, for tests that cannot download."""

import pickle
from pathlib import Path

import numpy as np

from dropbench.data.idx import write_idx


def write_mnist(root: Path, n_train: int = 120, n_test: int = 40, seed: int = 0) -> Path:
    """A learnable mini MNIST under root/MNIST/raw: each class is a bright bar at its own row."""
    rng = np.random.default_rng(seed)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 60, (n, 28, 28))
        for i, label in enumerate(labels):
            images[i, 2 + 2 * label : 4 + 2 * label, 4:24] = 255
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return raw


CIFAR10_LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                  "ship", "truck"]


def write_cifar10(root, per_batch=20, n_test=30, seed=0):
    """data_batch_1..5, test_batch and batches.meta as the official archive has them: pickled
    dicts with 'data' (N, 3072) uint8 rows (1024 red, 1024 green, 1024 blue) and 'labels'."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        n = n_test if name == "test_batch" else per_batch
        batch = {"batch_label": name, "labels": rng.integers(0, 10, n).tolist(),
                 "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 "filenames": [f"{name}_{i}.png" for i in range(n)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {"label_names": CIFAR10_LABELS, "num_cases_per_batch": per_batch, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder


def write_uci(root: Path, folder: str = "yacht", n_rows: int = 50, n_features: int = 3,
              n_splits: int = 2, test_size: int = 10, seed: int = 0) -> Path:
    """A small regression folder in the published UCI layout (root/uci/<folder>/data/): the
    target, the last column, is a linear function of the inputs plus noise; split k holds
    its own random test rows. Returns the data/ folder."""
    rng = np.random.default_rng(seed)
    data = root / "uci" / folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    x = rng.normal(5.0, 3.0, (n_rows, n_features))
    y = x @ rng.normal(0.0, 2.0, n_features) + 10.0 + rng.normal(0.0, 0.1, n_rows)
    np.savetxt(data / "data.txt", np.column_stack([x, y]))

    def ints(name, values):
        (data / name).write_text("".join(f"{int(v)}\n" for v in values))

    ints("index_features.txt", range(n_features))
    ints("index_target.txt", [n_features])
    for k in range(n_splits):
        order = rng.permutation(n_rows)
        ints(f"index_train_{k}.txt", order[test_size:])
        ints(f"index_test_{k}.txt", order[:test_size])
    ints("n_splits.txt", [n_splits])
    ints("n_hidden.txt", [50])
    ints("n_epochs.txt", [40])
    (data / "dropout_rates.txt").write_text("0.005\n0.01\n0.05\n0.1\n")
    (data / "tau_values.txt").write_text("0.25\n0.5\n0.75\n")
    return data
