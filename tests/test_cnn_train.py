"""End to end: the CNNs train on tiny CIFAR-10 and MNIST files written in the real formats;
augmentation + DropBlock resume bit-for-bit; amp/compile are logged no-ops on CPU.
(The one-line message for missing CIFAR-10 files is tested in test_cifar10.py.)"""

import csv
import json

import pytest
import torch
from test_cifar10 import write_cifar10

from data_files import write_mnist
from dropbench.engine import train
from dropbench.engine.io import load_checkpoint
from dropbench.engine.trainer import Run

TINY_CNN = ["model.channels=[4,8,8]", "model.hidden=[16,16]"]  # alexnet code, fewer filters
TINY_CIFAR = ["dataset=cifar10", "dataset.download=false", "dataset.checksums=false",
              "dataset.val_size=20", "trainer.batch_size=32", "trainer.train_eval_size=20"]


def read_rows(run_dir):
    with open(run_dir / "metrics.csv") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def test_cli_trains_the_srivastava_preset_on_cifar10(cli, tmp_path):
    write_cifar10(tmp_path / "data")
    r = cli("train", "+experiment=srivastava_cifar10_all", *TINY_CIFAR, *TINY_CNN,
            "dataset.augment=true", "trainer.epochs=1", "trainer.amp=bf16",
            "trainer.compile=true", "hydra.run.dir=run")
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_run"] == 1
    assert 0 <= summary["test_acc"] <= 1
    log = (tmp_path / "run" / "train.log").read_text()
    assert "trainer.amp=bf16 has no effect on cpu" in log
    assert "trainer.compile=true has no effect on cpu" in log


def test_augmented_dropblock_run_resumes_bit_for_bit(compose, tmp_path, monkeypatch):
    write_cifar10(tmp_path / "data")
    common = [*TINY_CIFAR, *TINY_CNN, "model=alexnet", "dataset.augment=true",
              "dropout=dropblock", "dropout.p=0.2", "trainer.epochs=2",
              f"data_dir={tmp_path / 'data'}", "trainer.progress=false",
              "trainer.threads=1"]  # bit for bit needs one thread count (not the load's)
    train(compose(common), tmp_path / "straight")

    real_epoch = Run.train_epoch

    def ctrl_c_in_epoch_2(run):
        if run.epoch == 1:
            raise KeyboardInterrupt
        return real_epoch(run)

    monkeypatch.setattr(Run, "train_epoch", ctrl_c_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train(compose(common), tmp_path / "resumed")
    monkeypatch.setattr(Run, "train_epoch", real_epoch)
    train(compose([*common, "trainer.resume=true"]), tmp_path / "resumed")
    assert read_rows(tmp_path / "straight") == read_rows(tmp_path / "resumed")
    weights = [load_checkpoint(tmp_path / d / "checkpoints" / "last.pt")["model"]
               for d in ("straight", "resumed")]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_lenet_trains_on_mnist(compose, tmp_path):
    write_mnist(tmp_path / "data")
    cfg = compose(["+experiment=lenet_mnist", "dataset.download=false", "dataset.val_size=20",
                   "trainer.epochs=2", "trainer.batch_size=25", "trainer.train_eval_size=20",
                   f"data_dir={tmp_path / 'data'}", "trainer.progress=false"])
    summary = train(cfg, tmp_path / "run")
    assert summary["status"] == "completed" and summary["epochs_run"] == 2
    assert len(read_rows(tmp_path / "run")) == 2
