"""MNIST through dropbench's IDX reader, on small IDX files the test writes itself."""

import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from data_files import write_mnist
from dropbench.data import load_data


def test_loader_reads_idx_files_and_splits(tmp_path):
    write_mnist(tmp_path, n_train=120, n_test=40)
    cfg = OmegaConf.create({"name": "mnist", "val_size": 20, "train_subset": 50,
                            "download": False})
    data = load_data(cfg, str(tmp_path), torch.device("cpu"))
    assert data.input_shape == (1, 28, 28) and data.num_classes == 10
    assert (len(data.train), len(data.val), len(data.test)) == (50, 20, 40)
    # normalised once with the training mean/std
    assert abs(data.train.x.mean().item()) < 0.2 and abs(data.train.x.std().item() - 1) < 0.2
    again = load_data(cfg, str(tmp_path), torch.device("cpu"))
    assert torch.equal(again.val.y, data.val.y), "validation split must not depend on the run"


def test_mnist_trains_end_to_end(cli, tmp_path):
    write_mnist(tmp_path / "data")
    r = cli("train", "dataset=mnist", "dataset.download=false", "dataset.val_size=20",
            "trainer.epochs=3", "model.hidden=[64]", "trainer.progress=false",
            "hydra.run.dir=run")
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["test_acc"] > 0.5  # the bars are easy: chance is 0.1
    verify = cli("data", "verify", "mnist")
    assert verify.returncode == 0 and "120 train + 40 test" in verify.stdout


def test_damaged_mnist_file_is_named(cli, tmp_path):
    raw = write_mnist(tmp_path / "data")
    images = raw / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:1000])  # truncated
    r = cli("train", "dataset=mnist", "dataset.download=false", "hydra.run.dir=run")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "damaged" in r.stderr and "Traceback" not in r.stderr


def test_digits_read_from_the_bundled_file_match_scikit_learn():
    from sklearn.datasets import load_digits

    from dropbench.data.vision import digits_arrays

    images, labels = digits_arrays()
    reference = load_digits()
    assert np.array_equal(images, reference.images) and np.array_equal(labels, reference.target)


def test_idx_reader_matches_torchvision(tmp_path):
    """dropbench reads the IDX files itself; torchvision's MNIST class reads them the same."""
    from torchvision.datasets import MNIST

    from dropbench.data.vision import mnist_splits

    write_mnist(tmp_path, n_train=50, n_test=20)
    ours = mnist_splits(tmp_path, download=False)
    for (x, y), train in zip(ours, (True, False), strict=True):
        ref = MNIST(str(tmp_path), train=train, download=False)
        assert x.dtype == ref.data.dtype == torch.uint8 and y.dtype == ref.targets.dtype
        assert torch.equal(x, ref.data) and torch.equal(y, ref.targets)


def test_idx_round_trip_and_damage(tmp_path):
    from dropbench.data.idx import IdxError, parse_idx, write_idx

    images = np.arange(2 * 3 * 4).reshape(2, 3, 4) % 256
    write_idx(tmp_path / "x", images)
    blob = (tmp_path / "x").read_bytes()
    assert blob[:4] == b"\x00\x00\x08\x03" and len(blob) == 4 + 12 + 24
    assert np.array_equal(parse_idx(blob), images)
    with pytest.raises(IdxError, match="35 bytes where its header promises 40"):
        parse_idx(blob[:-5])
    with pytest.raises(IdxError, match="not an IDX file"):
        parse_idx(b"\x00\x00\x0d\x01" + blob[4:])  # type 0x0D: floats, not bytes
