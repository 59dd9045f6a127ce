"""Carving the real MNIST sample (one gzipped IDX split) into train/test files the MNIST loader
reads, checked on a small sample written in the same format."""

import gzip

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from data_files import write_idx
from dropbench import DropbenchError
from dropbench.data import load_data
from dropbench.data.mnist_sample import SAMPLE_IMAGES, SAMPLE_LABELS, carve_mnist_sample


def write_sample(folder, n=50, seed=0):
    """n digits as gzipped IDX files named like the official test split; returns the labels."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    labels = rng.integers(0, 10, n)
    images = rng.integers(0, 256, (n, 28, 28))
    for name, array in ((SAMPLE_IMAGES, images), (SAMPLE_LABELS, labels)):
        plain = folder / name.removesuffix(".gz")
        write_idx(plain, array)
        (folder / name).write_bytes(gzip.compress(plain.read_bytes()))
        plain.unlink()
    return images, labels


def test_first_digits_become_train_and_the_rest_test(tmp_path):
    images, labels = write_sample(tmp_path / "sample", n=50)
    root = carve_mnist_sample(tmp_path / "sample", tmp_path / "data", n_train=30)
    cfg = OmegaConf.create({"name": "mnist", "val_size": 5, "train_subset": None,
                            "download": False})
    data = load_data(cfg, str(root), torch.device("cpu"))
    assert (len(data.train), len(data.val), len(data.test)) == (25, 5, 20)
    assert data.test.y.tolist() == labels[30:].tolist()
    assert sorted(data.train.y.tolist() + data.val.y.tolist()) == sorted(labels[:30].tolist())
    # pixels survive the carve: the first test image, normalised with the train statistics
    raw = (root / "MNIST" / "raw" / "t10k-images-idx3-ubyte").read_bytes()[16 : 16 + 784]
    assert list(raw) == images[30].ravel().tolist()


def test_a_missing_sample_is_named(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DropbenchError, match="lacks t10k-images-idx3-ubyte.gz"):
        carve_mnist_sample(tmp_path / "empty", tmp_path / "data")


def test_a_truncated_sample_is_named(tmp_path):
    write_sample(tmp_path / "sample", n=20)
    path = tmp_path / "sample" / SAMPLE_IMAGES
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-100]))
    with pytest.raises(DropbenchError, match="damaged"):
        carve_mnist_sample(tmp_path / "sample", tmp_path / "data", n_train=10)


def test_a_train_size_the_sample_cannot_give_is_refused(tmp_path):
    write_sample(tmp_path / "sample", n=20)
    with pytest.raises(DropbenchError, match="between 1 and 19"):
        carve_mnist_sample(tmp_path / "sample", tmp_path / "data", n_train=20)
