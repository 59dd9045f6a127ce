"""Image classification data: scikit-learn's digits (offline) and MNIST (IDX files; torchvision
downloads them)."""

import gzip
import importlib.util
import zlib
from pathlib import Path

import numpy as np
import torch

from dropbench.data.idx import IdxError, parse_idx
from dropbench.data.tensors import (
    SPLIT_SEED,
    ClassificationData,
    Split,
    carve_validation,
    check_examples,
)
from dropbench.errors import DropbenchError

MNIST_FILES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]
DIGITS_TEST_SIZE = 297  # digits has no official test split: a fixed 297 of its 1797 images
MNIST_SHAPE, DIGITS_SHAPE, CLASSES = (28, 28), (8, 8), 10
MNIST_FIX = "delete them and run `dropbench data download mnist` (or copy them again)"


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


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits as (images (1797, 8, 8) in 0..16, labels).

    Read straight from the csv.gz that scikit-learn ships: importing sklearn itself costs
    about 1.5 s, a sixth of a default `dropbench train`."""
    spec = importlib.util.find_spec("sklearn")
    csv = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz" if spec else None
    if csv is not None and csv.is_file():
        table = np.loadtxt(csv, delimiter=",")  # (1797, 65): 64 pixels, then the label
        return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits as sk_digits  # the file moved: take the slow way

    d = sk_digits()
    return d.images, d.target


def load_digits(cfg, root: Path, device) -> ClassificationData:
    images, labels = digits_arrays()
    check_examples(images, labels, DIGITS_SHAPE, CLASSES, "scikit-learn's digits files",
                   "reinstall scikit-learn")
    x = torch.tensor(images, dtype=torch.float32)  # (1797, 8, 8), values 0..16
    y = torch.tensor(labels)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(SPLIT_SEED))
    test_idx, train_idx = order[:DIGITS_TEST_SIZE], order[DIGITS_TEST_SIZE:]
    return _to_bundle((x[train_idx], y[train_idx]), (x[test_idx], y[test_idx]), cfg, "digits",
                      10, device)


def mnist_missing_message(root: Path) -> str:
    raw = root / "MNIST" / "raw"
    return (
        f"MNIST is not in {raw}: put {', '.join(MNIST_FILES)} there (or their .gz archives, "
        f"which are unpacked in place without a network), "
        f"or run `dropbench data download mnist --data-dir {root}` on a machine with internet"
    )


def read_idx(path: Path) -> np.ndarray:
    """An IDX file as an array of its declared shape; a truncated or altered file is named
    instead of failing deep inside a loader. Read here rather than through torchvision, whose
    import costs about a second of every run."""
    try:
        return parse_idx(bytearray(path.read_bytes()))
    except IdxError as e:
        raise DropbenchError(f"{path} is damaged ({e}); delete it and run "
                             f"`dropbench data download mnist` (or copy it again)") from None


def unpack_archives(raw: Path) -> None:
    """Unpack NAME.gz into NAME for each MNIST file that is missing (as torchvision would, but
    without its md5 list: the loaded arrays are checked instead); a damaged archive is named."""
    for name in MNIST_FILES:
        target, archive = raw / name, raw / f"{name}.gz"
        if target.is_file() or not archive.is_file():
            continue
        try:
            blob = gzip.decompress(archive.read_bytes())
        except (gzip.BadGzipFile, EOFError, zlib.error) as e:
            raise DropbenchError(f"{archive} is damaged (not a whole gzip archive: {e}); "
                                 f"delete it and run `dropbench data download mnist` (or copy "
                                 f"it again)") from None
        except OSError as e:
            raise DropbenchError(f"cannot read {archive} ({e.strerror}); make it readable") \
                from None
        tmp = target.with_name(target.name + ".tmp")
        try:
            tmp.write_bytes(blob)
            tmp.replace(target)
        except OSError as e:
            raise DropbenchError(f"cannot unpack {archive} into {raw} ({e.strerror}); make "
                                 f"{raw} writable or unpack it there yourself") from None


def mnist_splits(root: Path, download: bool):
    """The official (train, test) MNIST splits: uint8 images (N, 28, 28), int64 labels, each
    split checked (one label per image, 28x28 images, labels 0..9)."""
    raw = root / "MNIST" / "raw"
    unpack_archives(raw)
    if download and not all((raw / f).is_file() for f in MNIST_FILES):
        from torchvision.datasets import MNIST

        made = [d for d in (root, raw.parent, raw) if not d.exists()]  # by the download, if any
        try:  # torchvision fetches and checks the archives (md5), then unpacks them
            MNIST(str(root), train=True, download=True)
        except (RuntimeError, OSError) as e:
            for folder in reversed(made):  # a failed download leaves no empty folders behind
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
            cause = (str(e).strip().splitlines() or [""])[0][:120]
            raise DropbenchError(
                f"could not download MNIST: no mirror answered ({type(e).__name__}: {cause}); "
                f"this machine may have no internet. Where there is, run `dropbench data "
                f"download mnist --data-dir DIR` and copy DIR/MNIST/raw to {raw}, or put "
                f"{', '.join(MNIST_FILES)} (or their .gz archives) there") from e
    if not all((raw / f).is_file() for f in MNIST_FILES):
        raise DropbenchError(mnist_missing_message(root))
    splits = []
    for image_file, label_file in (MNIST_FILES[:2], MNIST_FILES[2:]):
        images, labels = read_idx(raw / image_file), read_idx(raw / label_file)
        check_examples(images, labels, MNIST_SHAPE, CLASSES,
                       f"MNIST's {image_file} and {label_file} in {raw}", MNIST_FIX)
        splits.append((torch.from_numpy(images), torch.from_numpy(labels).long()))
    return splits


def load_mnist(cfg, root: Path, device) -> ClassificationData:
    train, test = mnist_splits(root, cfg.download)
    return _to_bundle(train, test, cfg, "mnist", 10, device)
