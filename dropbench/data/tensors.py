"""Splits held as tensors on the training device, and the index batches that slice them."""

from collections.abc import Callable
from dataclasses import dataclass

import torch

from dropbench.errors import DropbenchError

# The validation split and train subset do not depend on the run's seed, so every job of a
# sweep is scored on the same examples.
SPLIT_SEED = 20140101


@dataclass
class Split:
    x: torch.Tensor  # (N, ...) float, normalised
    y: torch.Tensor  # (N,) int64 class labels

    def __len__(self) -> int:
        return len(self.y)

    def head(self, n: int) -> "Split":
        return Split(self.x[:n], self.y[:n])


@dataclass
class ClassificationData:
    train: Split
    val: Split
    test: Split
    input_shape: tuple  # (C, H, W) of one example
    num_classes: int
    task: str = "classify"
    augment: Callable | None = None  # (B, C, H, W) -> same: applied to each training batch


@dataclass
class RegressionData:
    """Standardised inputs and targets (Split.y float) and what maps predictions back to the
    original scale: y_original = y * y_std + y_mean. `tau` is the Gaussian likelihood's noise
    precision on the original target scale, `lengthscale` the prior length-scale of the
    weights (dropbench/models/prior.py turns both into the L2 penalty)."""

    train: Split
    val: Split
    test: Split
    input_shape: tuple  # (D,)
    y_mean: float
    y_std: float
    tau: float
    lengthscale: float
    num_outputs: int = 1
    task: str = "regress"
    augment: Callable | None = None
    val_is: str = "validation"  # what the val split holds: "validation" or "train"


def check_examples(images, labels, shape: tuple, num_classes: int, source: str,
                   fix: str) -> None:
    """Refuse inconsistent data before anything trains on it: one label per image, every
    image of `shape`, every label a class in 0..num_classes-1. `source` names the files in the
    message, `fix` says what to do about them."""
    if tuple(labels.shape) != (len(labels),):
        problem = f"labels of shape {tuple(labels.shape)} where one label per image belongs"
    elif len(images) != len(labels):
        problem = f"{len(images)} images but {len(labels)} labels"
    elif tuple(images.shape[1:]) != tuple(shape):
        found = "x".join(map(str, images.shape[1:])) or "scalar"
        problem = f"images of {found} where {'x'.join(map(str, shape))} belong"
    elif len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < num_classes:
        problem = (f"labels {int(labels.min())}..{int(labels.max())} where classes are "
                   f"0..{num_classes - 1}")
    elif not len(labels):
        problem = "no examples"
    else:
        return
    raise DropbenchError(f"{source}: damaged or not this dataset ({problem}); {fix}")


def carve_validation(x, y, val_size: int, train_subset: int | None, name: str):
    """Shuffle the official train split with a fixed seed, cut the validation set off its
    front, and optionally keep only `train_subset` of the rest."""
    if val_size >= len(y):
        raise DropbenchError(
            f"dataset.val_size={val_size} leaves no training data: {name} has {len(y)} "
            f"training examples; use a smaller dataset.val_size"
        )
    g = torch.Generator().manual_seed(SPLIT_SEED)
    order = torch.randperm(len(y), generator=g)
    val_idx, train_idx = order[:val_size], order[val_size:]
    if train_subset is not None:
        train_idx = train_idx[:train_subset]
    return (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx])


def batch_indices(n: int, batch_size: int, generator: torch.Generator | None = None):
    """Yield index tensors covering range(n): shuffled with `generator`, in order without."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    yield from order.split(batch_size)
