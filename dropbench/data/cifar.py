"""CIFAR-10 through torchvision's dataset class, held as normalised tensors on the device."""

import logging
import pickle
from pathlib import Path

import torch

from dropbench import DropbenchError
from dropbench.data.augment import random_crop_flip
from dropbench.data.tensors import ClassificationData, Split, carve_validation

log = logging.getLogger(__name__)

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_FILES = [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"]
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
# What a truncated, altered or foreign pickle raises inside torchvision's reader.
DAMAGED = (pickle.UnpicklingError, EOFError, ValueError, KeyError, TypeError, IndexError)


def cifar10_missing_message(root: Path) -> str:
    return (
        f"CIFAR-10 is not in {root / CIFAR10_FOLDER}: put {', '.join(CIFAR10_FILES)} there "
        f"(extract {CIFAR10_URL} into {root}), or run `dropbench data download cifar10 "
        f"--data-dir {root}` on a machine with internet"
    )


def cifar10_damaged_message(root: Path, why: str) -> str:
    return (
        f"CIFAR-10 files in {root / CIFAR10_FOLDER} are damaged ({why}); delete that folder "
        f"and run `dropbench data download cifar10`, or set dataset.checksums=false if it is "
        f"a deliberately modified copy"
    )


def _torchvision_cifar10(root: Path, train: bool, download: bool, checksums: bool):
    from torchvision.datasets import CIFAR10

    if checksums:
        return CIFAR10(str(root), train=train, download=download)

    class UncheckedCIFAR10(CIFAR10):
        # With md5 None, torchvision's check_integrity only checks that each file exists.
        train_list = [[name, None] for name, _ in CIFAR10.train_list]
        test_list = [[name, None] for name, _ in CIFAR10.test_list]
        meta = {**CIFAR10.meta, "md5": None}

    return UncheckedCIFAR10(str(root), train=train, download=download)


def cifar10_splits(root: Path, download: bool, checksums: bool = True):
    """The official (train, test) splits as (uint8 (N, 3, 32, 32), int64 (N,)) tensors."""
    folder = root / CIFAR10_FOLDER
    splits = []
    for train in (True, False):
        try:
            ds = _torchvision_cifar10(root, train, download, checksums)
        except RuntimeError as e:  # torchvision: "Dataset not found or corrupted"
            if any(not (folder / name).is_file() for name in CIFAR10_FILES):
                raise DropbenchError(cifar10_missing_message(root)) from e
            raise DropbenchError(cifar10_damaged_message(root, "md5 mismatch")) from e
        except OSError as e:  # no network (URLError and friends), or unreadable files
            what = "could not download CIFAR-10" if download else f"cannot read {folder}"
            raise DropbenchError(f"{what} ({e}); " + cifar10_missing_message(root)) from e
        except DAMAGED as e:
            raise DropbenchError(cifar10_damaged_message(root, type(e).__name__)) from e
        x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # (N, 32, 32, 3) -> NCHW
        splits.append((x, torch.tensor(ds.targets, dtype=torch.long)))
    return splits


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
