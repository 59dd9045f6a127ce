"""Damaged or inconsistent data is refused as it loads, in one line naming the file and the
fix; nothing trains on it. The files are written in their real on-disk formats (IDX, gzip,
CIFAR-10 pickles, text) and then damaged the way a broken copy or a wrong file would be."""

import gzip
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from data_files import write_cifar10, write_mnist
from dropbench import DropbenchError
from dropbench.data import load_data
from dropbench.data.cifar import CIFAR10_FOLDER
from dropbench.data.idx import write_idx
from dropbench.data.vision import MNIST_FILES

CPU = torch.device("cpu")


def mnist_cfg(**kw):
    return OmegaConf.create({"name": "mnist", "val_size": 20, "train_subset": None,
                             "download": False, **kw})


def load_mnist_from(root):
    return load_data(mnist_cfg(), str(root), CPU)


# --- MNIST: each damage, and the words its message must carry --------------------------------
def fewer_labels(raw):
    write_idx(raw / "train-labels-idx1-ubyte", np.zeros(200, dtype=np.uint8))


def label_out_of_range(raw):
    labels = np.zeros(120, dtype=np.uint8)
    labels[7] = 12
    write_idx(raw / "t10k-labels-idx1-ubyte", labels[:40])
    write_idx(raw / "train-labels-idx1-ubyte", labels)


def wrong_image_size(raw):
    write_idx(raw / "train-images-idx3-ubyte", np.zeros((120, 28, 27), dtype=np.uint8))


def labels_with_two_dims(raw):
    write_idx(raw / "train-labels-idx1-ubyte", np.zeros((120, 2), dtype=np.uint8))


def images_in_place_of_labels(raw):
    (raw / "t10k-labels-idx1-ubyte").write_bytes((raw / "t10k-images-idx3-ubyte").read_bytes())


def header_promises_more(raw):
    path = raw / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-784])  # one image short of its header's count


def not_idx_at_all(raw):
    (raw / "train-labels-idx1-ubyte").write_bytes(b"<html>404 not found</html>")


MNIST_DAMAGE = {
    fewer_labels: "120 images but 200 labels",
    label_out_of_range: "labels 0..12 where classes are 0..9",
    wrong_image_size: "images of 28x27 where 28x28 belong",
    labels_with_two_dims: "labels of shape (120, 2)",
    images_in_place_of_labels: "labels of shape (40, 28, 28)",
    header_promises_more: "bytes where its header promises",
    not_idx_at_all: "not an IDX file",
}


@pytest.mark.parametrize("damage", MNIST_DAMAGE, ids=lambda f: f.__name__)
def test_damaged_mnist_is_refused_naming_file_and_fix(tmp_path, damage):
    raw = write_mnist(tmp_path, n_train=120, n_test=40)
    damage(raw)
    with pytest.raises(DropbenchError) as refused:
        load_mnist_from(tmp_path)
    message = str(refused.value)
    assert MNIST_DAMAGE[damage] in message and "\n" not in message
    assert str(raw) in message and "dropbench data download mnist" in message


def test_a_failed_mnist_download_says_what_to_do_and_leaves_no_empty_folders(tmp_path,
                                                                             monkeypatch):
    """Offline, torchvision makes root/MNIST/raw and then finds no mirror: the line says the
    machine may have no internet and how to bring the files over, and the folders it made
    are gone again."""
    import torchvision.datasets

    from dropbench.data.vision import mnist_splits

    def offline(root, train, download):
        (Path(root) / "MNIST" / "raw").mkdir(parents=True)
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried 2 mirrors.")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    root = tmp_path / "data"
    with pytest.raises(DropbenchError) as failed:
        mnist_splits(root, download=True)
    message = str(failed.value)
    assert "\n" not in message and "no mirror answered" in message
    assert "Error downloading train-images-idx3-ubyte.gz" in message
    assert "may have no internet" in message and str(root / "MNIST" / "raw") in message
    assert not root.exists()


def gzip_all(raw):
    for path in list(raw.iterdir()):
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()


def test_gzip_archives_unpack_without_a_network(tmp_path):
    raw = write_mnist(tmp_path, n_train=120, n_test=40)
    expected = load_mnist_from(tmp_path)
    gzip_all(raw)
    data = load_mnist_from(tmp_path)
    assert torch.equal(data.train.x, expected.train.x) and torch.equal(data.test.y,
                                                                        expected.test.y)


@pytest.mark.parametrize("damage, words", [
    (lambda blob: b"this is not gzip" + blob, "not a whole gzip archive"),
    (lambda blob: blob[: len(blob) // 2], "not a whole gzip archive"),
])
def test_damaged_gzip_archive_is_named_with_the_fix(tmp_path, damage, words):
    raw = write_mnist(tmp_path, n_train=120, n_test=40)
    gzip_all(raw)
    archive = raw / "train-images-idx3-ubyte.gz"
    archive.write_bytes(damage(archive.read_bytes()))
    for download in (False, True):  # refused before any download is tried
        with pytest.raises(DropbenchError) as refused:
            load_data(mnist_cfg(download=download), str(tmp_path), CPU)
        message = str(refused.value)
        assert f"{archive} is damaged ({words}" in message
        assert "delete it and run `dropbench data download mnist`" in message


# --- random corruption: consistent data or one refusal, never anything else ------------------
def corrupt(blob: bytes, how: str, at: int, byte: int) -> bytes:
    at %= max(len(blob), 1)
    if how == "truncate":
        return blob[:at]
    if how == "append":
        return blob + bytes([byte]) * (at % 7 + 1)
    return blob[:at] + bytes([blob[at] ^ (byte or 1)]) + blob[at + 1:]  # flip bits of one byte


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(MNIST_FILES), archived=st.booleans(),
       how=st.sampled_from(["truncate", "append", "flip"]),
       at=st.one_of(st.integers(0, 20), st.integers(0, 10**6)), byte=st.integers(0, 255))
def test_any_corruption_loads_consistent_data_or_is_refused(tmp_path_factory, name, archived,
                                                            how, at, byte):
    root = tmp_path_factory.mktemp("mnist")
    raw = write_mnist(root, n_train=60, n_test=30)
    if archived:
        gzip_all(raw)
    path = raw / (f"{name}.gz" if archived else name)
    path.write_bytes(corrupt(path.read_bytes(), how, at, byte))
    try:
        data = load_mnist_from(root)
    except DropbenchError as e:
        assert "\n" not in str(e) and str(raw) in str(e)
        return
    for split in (data.train, data.val, data.test):  # what loads is whole and consistent
        assert len(split.x) == len(split.y) and split.x.shape[1:] == (1, 28, 28)
        assert 0 <= int(split.y.min()) and int(split.y.max()) <= 9


# --- CIFAR-10 ---------------------------------------------------------------------------------
def cifar_cfg():
    return OmegaConf.create({"name": "cifar10", "val_size": 20, "train_subset": None,
                             "download": False, "augment": False, "checksums": False})


def rewrite_batch(folder, name, change):
    batch = pickle.loads((folder / name).read_bytes())
    change(batch)
    (folder / name).write_bytes(pickle.dumps(batch, protocol=2))


@pytest.mark.parametrize("change, words", [
    (lambda b: b.update(labels=b["labels"][:-3]), "20 images but 17 labels"),
    (lambda b: b.update(data=b["data"][:, :3000]), "images of 3000 where 3072 belong"),
    (lambda b: b["labels"].__setitem__(0, 10), "labels 0..10 where classes are 0..9"),
    (lambda b: b.update(data=b["data"].astype(np.float32)), "pixels of type float32"),
])
def test_inconsistent_cifar_batch_is_refused(tmp_path, change, words):
    folder = write_cifar10(tmp_path)
    rewrite_batch(folder, "data_batch_3", change)
    with pytest.raises(DropbenchError) as refused:
        load_data(cifar_cfg(), str(tmp_path), CPU)
    message = str(refused.value)
    assert words in message and str(folder / "data_batch_3") in message
    assert f"delete {CIFAR10_FOLDER} and run `dropbench data download cifar10`" in message


# --- text -------------------------------------------------------------------------------------
def write_corpus(folder, train="a b c\nb c a\n", valid="a b\n", test="c a\n"):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("train", train), ("valid", valid), ("test", test)):
        (folder / f"{name}.txt").write_bytes(text.encode("utf-8") if isinstance(text, str)
                                             else text)
    return folder


def textdir_cfg(folder):
    return OmegaConf.create({"name": "textdir", "path": str(folder), "train_subset": None})


def test_text_that_is_not_utf8_names_file_and_byte_offset(tmp_path):
    folder = write_corpus(tmp_path / "corpus", valid=b"a b\n" + b"caf\xe9 a\n")
    with pytest.raises(DropbenchError) as refused:
        load_data(textdir_cfg(folder), str(tmp_path), CPU)
    assert str(refused.value).startswith(
        f"{folder / 'valid.txt'} is not UTF-8 text: byte 0xe9 at offset 7 does not decode; "
        "convert the file to UTF-8")


def test_valid_utf8_beyond_ascii_reads(tmp_path):
    folder = write_corpus(tmp_path / "corpus", train="café naïve\nnaïve café\n",
                          valid="café\n", test="naïve\n")
    data = load_data(textdir_cfg(folder), str(tmp_path), CPU)
    assert data.vocab[:3] == ["café", "naïve", "<eos>"]


@pytest.mark.parametrize("split", ["valid", "test"])
def test_an_empty_split_is_refused(tmp_path, split):
    folder = write_corpus(tmp_path / "corpus", **{split: ""})
    with pytest.raises(DropbenchError, match=f"{split}.txt holds no text"):
        load_data(textdir_cfg(folder), str(tmp_path), CPU)


# --- through the CLI: one line, no traceback, nothing trained ---------------------------------
def refused_run(cli, tmp_path, *args):
    r = cli("train", *args, "model.hidden=[8]", "trainer.epochs=1", "trainer.progress=false",
            "hydra.run.dir=run")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dropbench: error: "), r.stderr
    summary = tmp_path / "run" / "summary.json"
    if summary.exists():  # a run dir may hold the refusal, never a trained run
        assert json.loads(summary.read_text())["status"] == "failed"
    assert not (tmp_path / "run" / "metrics.csv").exists()
    return lines[0]


def test_cli_refuses_mnist_with_fewer_labels_than_images(cli, tmp_path):
    raw = write_mnist(tmp_path / "data", n_train=300, n_test=40)
    write_idx(raw / "train-labels-idx1-ubyte", np.zeros(200, dtype=np.uint8))
    line = refused_run(cli, tmp_path, "dataset=mnist", "dataset.download=false",
                       "dataset.val_size=20")
    assert "300 images but 200 labels" in line


def test_cli_refuses_an_archive_that_is_not_gzip(cli, tmp_path):
    raw = write_mnist(tmp_path / "data", n_train=120, n_test=40)
    gzip_all(raw)
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    line = refused_run(cli, tmp_path, "dataset=mnist", "dataset.val_size=20")
    assert "t10k-labels-idx1-ubyte.gz is damaged" in line and "download" in line


def test_cli_refuses_text_that_is_not_utf8(cli, tmp_path):
    folder = write_corpus(tmp_path / "corpus", train=b"a b c\n\xff\xfe b\n")
    line = refused_run(cli, tmp_path, "dataset=textdir", f"dataset.path={folder}",
                       "model=lstm", "dropout=none", "model.bptt=3",
                       "trainer.batch_size=2")
    assert "train.txt is not UTF-8 text: byte 0xff at offset 6" in line
