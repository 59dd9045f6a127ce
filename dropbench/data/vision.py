"""Image classification data: scikit-learn's digits (offline) and MNIST through torchvision."""

import logging
from pathlib import Path

import torch

from dropbench import DropbenchError
from dropbench.data.tensors import SPLIT_SEED, ClassificationData, Split, carve_validation

log = logging.getLogger(__name__)

MNIST_FILES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]
DIGITS_TEST_SIZE = 297  # digits has no official test split: a fixed 297 of its 1797 images


def _to_bundle(train, test, cfg, name: str, num_classes: int, device) -> ClassificationData:
    """uint8/float images (N, H, W) or (N, C, H, W) -> normalised float tensors on device."""
    if cfg.get("augment"):
        raise DropbenchError(f"dataset.augment=true is implemented for cifar10 only (crops "
                             f"and flips of natural images), not {name}; drop the override")
    (x_tr, y_tr), (x_val, y_val) = carve_validation(*train, cfg.val_size, cfg.train_subset, name)
    x_te, y_te = test
    # One mean/std from the training images, applied once to every split.
    mean, std = x_tr.float().mean(), x_tr.float().std()

    def prep(x, y):
        x = x.float()
        if x.dim() == 3:
            x = x.unsqueeze(1)  # (N, 1, H, W)
        x = (x - mean) / std
        return Split(x.to(device), y.long().to(device))

    tr = prep(x_tr, y_tr)
    return ClassificationData(
        train=tr,
        val=prep(x_val, y_val),
        test=prep(x_te, y_te),
        input_shape=tuple(tr.x.shape[1:]),
        num_classes=num_classes,
    )


def load_digits(cfg, root: Path, device) -> ClassificationData:
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = torch.tensor(d.images, dtype=torch.float32)  # (1797, 8, 8), values 0..16
    y = torch.tensor(d.target)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(SPLIT_SEED))
    test_idx, train_idx = order[:DIGITS_TEST_SIZE], order[DIGITS_TEST_SIZE:]
    return _to_bundle((x[train_idx], y[train_idx]), (x[test_idx], y[test_idx]), cfg, "digits",
                      10, device)


def mnist_missing_message(root: Path) -> str:
    raw = root / "MNIST" / "raw"
    return (
        f"MNIST is not in {raw}: put {', '.join(MNIST_FILES)} there (or their .gz archives), "
        f"or run `dropbench data download mnist --data-dir {root}` on a machine with internet"
    )


def mnist_splits(root: Path, download: bool):
    """The official (train, test) MNIST splits as uint8 tensors, through torchvision."""
    from torchvision.datasets import MNIST

    splits = []
    for train in (True, False):
        try:
            ds = MNIST(str(root), train=train, download=download)
        except RuntimeError as e:  # torchvision: "Dataset not found" or a failed download
            prefix = "could not download MNIST (offline?); " if download else ""
            raise DropbenchError(prefix + mnist_missing_message(root)) from e
        except OSError as e:  # no network: URLError and friends
            message = f"could not download MNIST ({e}); " + mnist_missing_message(root)
            raise DropbenchError(message) from e
        except (ValueError, EOFError) as e:  # truncated or altered files
            raise DropbenchError(
                f"MNIST files in {root / 'MNIST' / 'raw'} are damaged ({e}); delete them "
                f"and run `dropbench data download mnist`"
            ) from e
        splits.append((ds.data, ds.targets))
    return splits


def load_mnist(cfg, root: Path, device) -> ClassificationData:
    train, test = mnist_splits(root, cfg.download)
    return _to_bundle(train, test, cfg, "mnist", 10, device)
