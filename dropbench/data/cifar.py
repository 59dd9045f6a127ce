"""CIFAR-10 from the official python batches, held as normalised tensors on the device."""

import logging
import pickle
from pathlib import Path

import torch

from dropbench.data.augment import random_crop_flip
from dropbench.data.tensors import ClassificationData, Split, carve_validation, check_examples
from dropbench.errors import DropbenchError

log = logging.getLogger(__name__)

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_FILES = [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"]
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ROW = 3 * 32 * 32  # one image per row: 1024 red, 1024 green, 1024 blue bytes
# What a truncated, altered or foreign pickle raises inside the batch reader.
DAMAGED = (pickle.UnpicklingError, EOFError, ValueError, KeyError, TypeError, IndexError)


def cifar10_missing_message(root: Path) -> str:
    return (
        f"CIFAR-10 is not in {root / CIFAR10_FOLDER}: put {', '.join(CIFAR10_FILES)} there "
        f"(extract {CIFAR10_URL} into {root}), or run `dropbench data download cifar10 "
        f"--data-dir {root}` on a machine with internet"
    )


CIFAR10_FIX = (f"delete {CIFAR10_FOLDER} and run `dropbench data download cifar10` (or "
               f"extract {CIFAR10_URL} again)")


def cifar10_damaged_message(root: Path, why: str) -> str:
    return (
        f"CIFAR-10 files in {root / CIFAR10_FOLDER} are damaged ({why}); delete that folder "
        f"and run `dropbench data download cifar10`, or set dataset.checksums=false if it is "
        f"a deliberately modified copy"
    )


class BatchUnpickler(pickle.Unpickler):
    """Builds what a CIFAR-10 batch holds (dicts, lists, strings, bytes, numbers and numpy
    arrays) and refuses every other global, so a crafted batch cannot run code."""

    def find_class(self, module: str, name: str):
        allowed = SAFE_GLOBALS.get((module, name))
        if allowed is None:
            raise UnsafePickle(f"{module}.{name}")
        return allowed


class UnsafePickle(pickle.UnpicklingError):
    pass


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """Protocol-2 pickles spell bytes as _codecs.encode(text, 'latin1')."""
    if encoding.replace("-", "").lower() != "latin1":
        raise UnsafePickle(f"_codecs.encode with {encoding!r}")
    return text.encode("latin1")


def _safe_globals() -> dict:
    import numpy as np

    core = np._core if hasattr(np, "_core") else np.core  # numpy 2 renamed numpy.core
    table = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
             ("_codecs", "encode"): _latin1_encode}
    for prefix in ("numpy.core", "numpy._core"):  # pickles name either, whichever wrote them
        table[(f"{prefix}.multiarray", "_reconstruct")] = core.multiarray._reconstruct
        table[(f"{prefix}.multiarray", "scalar")] = core.multiarray.scalar
        table[(f"{prefix}.numeric", "_frombuffer")] = core.numeric._frombuffer
    return table


SAFE_GLOBALS = _safe_globals()


def read_batch(path: Path) -> dict:
    with open(path, "rb") as f:
        entry = BatchUnpickler(f, encoding="latin1").load()
    if not isinstance(entry, dict):
        raise TypeError(f"a batch holds a dict, not a {type(entry).__name__}")
    return entry


def _md5s() -> dict:
    from torchvision.datasets import CIFAR10

    return {**dict(CIFAR10.train_list + CIFAR10.test_list),
            CIFAR10.meta["filename"]: CIFAR10.meta["md5"]}


def _problems(folder: Path, checksums: bool) -> tuple[list[str], list[str]]:
    """(missing file names, names whose md5 differs from torchvision's list)."""
    from torchvision.datasets.utils import check_integrity

    missing = [name for name in CIFAR10_FILES if not (folder / name).is_file()]
    if not checksums:
        return missing, []
    sums = _md5s()
    return missing, [n for n in CIFAR10_FILES
                     if n not in missing and not check_integrity(str(folder / n), sums[n])]


def _download(root: Path) -> None:
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import download_and_extract_archive

    download_and_extract_archive(CIFAR10.url, str(root), filename=CIFAR10.filename,
                                 md5=CIFAR10.tgz_md5)


def _read_split(folder: Path, names: list[str]):
    import numpy as np

    images, labels = [], []
    for name in names:
        entry = read_batch(folder / name)
        data = np.asarray(entry["data"])
        batch_labels = np.asarray(entry["labels"] if "labels" in entry else entry["fine_labels"])
        if data.dtype != np.uint8:
            raise DropbenchError(f"{folder / name} is damaged or not a CIFAR-10 batch (pixels "
                                 f"of type {data.dtype}, not bytes); " + CIFAR10_FIX)
        check_examples(data, batch_labels, (ROW,), 10, f"CIFAR-10's {folder / name}",
                       CIFAR10_FIX)
        images.append(data)
        labels += batch_labels.tolist()
    x = np.vstack(images).reshape(-1, 3, 32, 32)  # rows: 1024 red, 1024 green, 1024 blue
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.uint8)), torch.tensor(
        labels, dtype=torch.long)


def cifar10_splits(root: Path, download: bool, checksums: bool = True):
    """The official (train, test) splits as (uint8 (N, 3, 32, 32), int64 (N,)) tensors.

    Files, md5s and the archive come from torchvision's CIFAR10 class; the batches are read
    by BatchUnpickler (torchvision's reader would unpickle anything), md5s checked or not."""
    folder = root / CIFAR10_FOLDER
    missing, damaged = _problems(folder, checksums)
    if (missing or damaged) and download:
        try:
            _download(root)
        except OSError as e:  # no network (URLError and friends), or an unwritable root
            raise DropbenchError(f"could not download CIFAR-10 ({e}); "
                                 + cifar10_missing_message(root)) from e
        missing, damaged = _problems(folder, checksums)
    if missing:
        raise DropbenchError(cifar10_missing_message(root))
    if damaged:
        raise DropbenchError(cifar10_damaged_message(root, "md5 mismatch"))
    try:
        return [_read_split(folder, [f"data_batch_{i}" for i in range(1, 6)]),
                _read_split(folder, ["test_batch"])]
    except UnsafePickle as e:
        raise DropbenchError(
            f"CIFAR-10 files in {folder} ask to run code when read ({e} is not data); they "
            f"are not the official batches: delete that folder and run `dropbench data "
            f"download cifar10`") from None
    except OSError as e:
        raise DropbenchError(f"cannot read {folder} ({e}); " + cifar10_missing_message(root)
                             ) from e
    except DAMAGED as e:
        raise DropbenchError(cifar10_damaged_message(root, type(e).__name__)) from e


def load_cifar10(cfg, root: Path, device) -> ClassificationData:
    train, test = cifar10_splits(root, cfg.download, cfg.checksums)
    (x_tr, y_tr), val = carve_validation(*train, cfg.val_size, cfg.train_subset, "cifar10")
    # Per-channel statistics of the training images, applied once to every split.
    mean = x_tr.float().mean(dim=(0, 2, 3), keepdim=True)  # (1, 3, 1, 1)
    std = x_tr.float().std(dim=(0, 2, 3), keepdim=True)
    device = torch.device(device)
    # cuDNN's fastest convolution kernels want NHWC; PyTorch calls that channels_last.
    memory_format = torch.channels_last if device.type == "cuda" else torch.contiguous_format

    def prep(x, y) -> Split:
        x = x.to(device)  # copy uint8: 4x fewer bytes than float
        x = ((x.float() - mean.to(device)) / std.to(device)).contiguous(
            memory_format=memory_format)
        return Split(x, y.to(device))

    log.info("cifar10: %d train / %d val / %d test images, augment=%s",
             len(y_tr), len(val[1]), len(test[1]), cfg.augment)
    return ClassificationData(
        train=prep(x_tr, y_tr),
        val=prep(*val),
        test=prep(*test),
        input_shape=(3, 32, 32),
        num_classes=10,
        augment=random_crop_flip if cfg.augment else None,
    )
