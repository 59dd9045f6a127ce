"""Datasets as in-memory tensors. `load_data(cfg)` returns a bundle the engine trains on.

Each loader is registered in DATASETS under the name used by `conf/dataset/<name>.yaml`.
"""

from pathlib import Path

from dropbench import DropbenchError
from dropbench.data.cifar import load_cifar10
from dropbench.data.tensors import ClassificationData, Split, batch_indices
from dropbench.data.text import load_ptb, load_textdir
from dropbench.data.vision import load_digits, load_mnist

DATASETS = {
    "digits": load_digits,
    "mnist": load_mnist,
    "cifar10": load_cifar10,
    "ptb": load_ptb,
    "textdir": load_textdir,
}

__all__ = ["DATASETS", "ClassificationData", "Split", "batch_indices", "load_data", "data_root"]


def data_root(data_dir: str) -> Path:
    return Path(data_dir).expanduser()


def load_data(dataset_cfg, data_dir: str, device):
    """Load the dataset named by dataset_cfg.name onto `device`."""
    loader = DATASETS.get(dataset_cfg.name)
    if loader is None:
        raise DropbenchError(
            f"unknown dataset {dataset_cfg.name!r}; choose one of {', '.join(DATASETS)}"
        )
    return loader(dataset_cfg, data_root(data_dir), device)
