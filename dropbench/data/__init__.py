"""Datasets as in-memory tensors. `load_data(cfg)` returns a bundle the engine trains on.

Each loader is registered in dropbench.registry.DATASETS (dropbench/datasets.py: the
built-ins) under the name used by `conf/dataset/<name>.yaml`.
"""

from pathlib import Path

from dropbench import registry
from dropbench.data.tensors import ClassificationData, Split, batch_indices

__all__ = ["ClassificationData", "Split", "batch_indices", "load_data", "data_root"]


def data_root(data_dir: str) -> Path:
    return Path(data_dir).expanduser()


def load_data(dataset_cfg, data_dir: str, device):
    """Load the dataset named by dataset_cfg.name onto `device`."""
    loader = registry.DATASETS.get(dataset_cfg.name, "dataset").load()
    return loader(dataset_cfg, data_root(data_dir), device)
