"""CIFAR-10 from tiny pickle batches in the real cifar-10-batches-py format, the one-line
errors for missing and damaged files, and the batched crop/flip augmentation."""

import pickle

import pytest
import torch

from data_files import write_cifar10
from dropbench import DropbenchError
from dropbench.data import ClassificationData, Split
from dropbench.data.augment import crop_and_flip, random_crop_flip
from dropbench.data.cifar import CIFAR10_FILES, CIFAR10_FOLDER, cifar10_splits, load_cifar10
from dropbench.data.manage import verify
from dropbench.engine.tasks import ClassificationTask


def cifar_cfg(**kw):
    from omegaconf import OmegaConf

    cfg = {"name": "cifar10", "val_size": 20, "train_subset": None, "download": False,
           "augment": False, "checksums": False, **kw}
    return OmegaConf.create(cfg)


def test_tiny_batches_load_in_channel_order(tmp_path):
    write_cifar10(tmp_path)
    (x_tr, y_tr), (x_te, y_te) = cifar10_splits(tmp_path, download=False, checksums=False)
    assert x_tr.shape == (100, 3, 32, 32) and x_tr.dtype == torch.uint8
    assert x_te.shape == (30, 3, 32, 32) and y_te.dtype == torch.long
    # channel order survives: the first 1024 bytes of a row are the red plane
    raw = pickle.loads((tmp_path / CIFAR10_FOLDER / "data_batch_1").read_bytes())
    assert torch.equal(x_tr[0, 0].flatten(), torch.from_numpy(raw["data"][0, :1024]))
    assert y_tr[:20].tolist() == raw["labels"]


def test_bundle_is_normalised_per_channel(tmp_path):
    write_cifar10(tmp_path)
    data = load_cifar10(cifar_cfg(), tmp_path, "cpu")
    assert (len(data.train), len(data.val), len(data.test)) == (80, 20, 30)
    assert data.input_shape == (3, 32, 32) and data.num_classes == 10
    means = data.train.x.mean(dim=(0, 2, 3))
    stds = data.train.x.std(dim=(0, 2, 3))
    assert torch.allclose(means, torch.zeros(3), atol=1e-5)
    assert torch.allclose(stds, torch.ones(3), atol=1e-5)
    assert data.augment is None
    assert load_cifar10(cifar_cfg(augment=True), tmp_path, "cpu").augment is random_crop_flip


def test_missing_files_name_the_folder_and_files(tmp_path):
    with pytest.raises(DropbenchError) as e:
        cifar10_splits(tmp_path, download=False)
    message = str(e.value)
    assert str(tmp_path / CIFAR10_FOLDER) in message
    assert all(name in message for name in CIFAR10_FILES)
    assert "dropbench data download cifar10" in message and "\n" not in message


def test_checksums_catch_files_that_are_not_the_official_ones(tmp_path):
    write_cifar10(tmp_path)  # right format, wrong bytes: the md5s cannot match
    with pytest.raises(DropbenchError, match="damaged \\(md5 mismatch\\)"):
        cifar10_splits(tmp_path, download=False, checksums=True)
    results = verify(["cifar10"], tmp_path)  # `dropbench data verify` always checks md5s
    assert results[0][:2] == ("cifar10", False) and "md5" in results[0][2]


def test_truncated_file_is_reported_as_damaged(tmp_path):
    folder = write_cifar10(tmp_path)
    path = folder / "data_batch_3"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DropbenchError, match="damaged") as e:
        cifar10_splits(tmp_path, download=False, checksums=False)
    assert str(folder) in str(e.value)


# --- augmentation ------------------------------------------------------------------------
def test_centre_crop_without_flip_is_the_identity_and_flip_mirrors_exactly():
    x = torch.randn(5, 3, 8, 8)
    centre = torch.full((5,), 4)
    assert torch.equal(crop_and_flip(x, centre, centre, torch.zeros(5, dtype=bool), 4), x)
    flip = torch.tensor([True, False, True, False, False])
    out = crop_and_flip(x, centre, centre, flip, 4)
    assert torch.equal(out[flip], x[flip].flip(-1))
    assert torch.equal(out[~flip], x[~flip])


def test_crop_offsets_shift_the_image_and_pad_with_zeros():
    x = torch.randn(2, 3, 8, 8)
    top = torch.tensor([0, 8])
    left = torch.tensor([0, 3])
    out = crop_and_flip(x, top, left, torch.zeros(2, dtype=bool), 4)
    # example 0: shifted down-right by 4, zeros above and to the left
    assert torch.equal(out[0, :, 4:, 4:], x[0, :, :4, :4])
    assert not out[0, :, :4].any() and not out[0, :, :, :4].any()
    # example 1: shifted up by 4 and right by 1
    assert torch.equal(out[1, :, :4, 1:], x[1, :, 4:, :7])
    assert not out[1, :, 4:].any()


def test_random_flips_happen_half_the_time():
    torch.manual_seed(0)
    x = torch.randn(2000, 1, 4, 4)
    out = random_crop_flip(x, pad=0)  # no room to shift: each output is x or its mirror
    flipped = (out == x.flip(-1)).flatten(1).all(1)
    assert bool((flipped | (out == x).flatten(1).all(1)).all())
    assert abs(flipped.float().mean().item() - 0.5) < 0.05  # 2000 draws: sd 0.011


def test_training_batches_keep_shapes_and_labels():
    torch.manual_seed(1)
    x = torch.randn(50, 3, 8, 8)
    y = torch.arange(50)
    split = Split(x, y)
    data = ClassificationData(split, split, split, (3, 8, 8), 50, augment=random_crop_flip)
    task = ClassificationTask(data, batch_size=16, train_eval_size=10)
    batches = list(task.train_batches(torch.Generator().manual_seed(0)))
    assert [len(b[1]) for b in batches] == [16, 16, 16, 2]
    for xb, yb in batches:
        assert xb.shape == (len(yb), 3, 8, 8)
        # every pixel of an augmented image comes from the example its label names (or is
        # crop padding): random normal values do not repeat across examples
        for xi, yi in zip(xb, yb, strict=True):
            assert torch.isin(xi[xi != 0], x[yi]).all()
        assert not torch.equal(xb, x[yb])  # and the batch was augmented
