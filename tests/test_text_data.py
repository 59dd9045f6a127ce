"""Word-level corpora: vocabulary, <eos>, <unk>, file discovery, PTB download and checksums."""

import hashlib
import logging

import pytest
import torch

from dropbench import DropbenchError
from dropbench.data import manage, text

TRAIN = " the cat sat \n the dog sat down \n"
VALID = " the cat ran \n"
TEST = " a dog sat \n"


def write_corpus(folder, names=("train.txt", "valid.txt", "test.txt"), texts=(TRAIN, VALID, TEST)):
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in zip(names, texts, strict=True):
        (folder / name).write_text(body)
    return folder


def textdir_cfg(path, train_subset=None):
    return type("Cfg", (), {"path": str(path), "train_subset": train_subset, "download": False})


def test_vocabulary_from_train_with_eos_at_line_ends(tmp_path):
    data = text.load_textdir(textdir_cfg(write_corpus(tmp_path)), tmp_path, "cpu")
    words = [data.vocab[i] for i in data.train.tolist()]
    assert words == ["the", "cat", "sat", "<eos>", "the", "dog", "sat", "down", "<eos>"]
    assert data.vocab[:6] == ["the", "cat", "sat", "<eos>", "dog", "down"]  # first appearance
    assert data.task == "lm" and data.train.dtype == torch.long


def test_unknown_words_map_to_unk_with_a_counting_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        data = text.load_textdir(textdir_cfg(write_corpus(tmp_path)), tmp_path, "cpu")
    assert "<unk>" in data.vocab and data.vocab_size == 7  # 6 training words + <unk>
    assert [data.vocab[i] for i in data.val.tolist()] == ["the", "cat", "<unk>", "<eos>"]
    assert [data.vocab[i] for i in data.test.tolist()] == ["<unk>", "dog", "sat", "<eos>"]
    assert "valid.txt: 1 of 4 tokens" in caplog.text and "test.txt: 1 of 4 tokens" in caplog.text


def test_unk_already_in_training_text_is_reused(tmp_path):
    folder = write_corpus(tmp_path, texts=(" <unk> cat \n", " dog \n", " cat \n"))
    data = text.load_textdir(textdir_cfg(folder), tmp_path, "cpu")
    assert data.vocab == ["<unk>", "cat", "<eos>"] and data.val.tolist() == [0, 2]


def test_textdir_finds_named_splits_and_keeps_a_train_subset(tmp_path):
    folder = write_corpus(tmp_path, names=("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"))
    data = text.load_textdir(textdir_cfg(folder, train_subset=5), tmp_path, "cpu")
    assert len(data.train) == 5 and len(data.val) == 4


@pytest.mark.parametrize("files, message", [
    ((), "no file for the train split"),
    (("a.train.txt", "b.train.txt"), "2 files (a.train.txt, b.train.txt)"),
])
def test_textdir_explains_missing_or_ambiguous_files(tmp_path, files, message):
    for name in files:
        (tmp_path / name).write_text(TRAIN)
    with pytest.raises(DropbenchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        text.load_textdir(textdir_cfg(tmp_path), tmp_path, "cpu")


def fake_ptb_mirror(tmp_path, monkeypatch):
    """PTB-format files served through file:// URLs, with their checksums made the official ones."""
    mirror = write_corpus(tmp_path / "mirror", names=tuple(text.PTB_FILES.values()))
    md5 = {s: hashlib.md5((mirror / n).read_bytes()).hexdigest() for s, n in text.PTB_FILES.items()}
    monkeypatch.setattr(text, "PTB_MD5", md5)
    monkeypatch.setattr(text, "PTB_MIRRORS", [
        (tmp_path / "gone").as_uri() + "/{name}",  # an unreachable mirror is skipped
        mirror.as_uri() + "/{name}",
    ])
    return mirror


def test_ptb_downloads_from_the_first_good_mirror_and_verifies(tmp_path, monkeypatch):
    fake_ptb_mirror(tmp_path, monkeypatch)
    root = tmp_path / "data"
    summary = manage.download("ptb", root)
    assert "md5 verified" in summary and (root / "ptb" / "ptb.train.txt").read_text() == TRAIN
    assert not list((root / "ptb").glob("*.part"))  # no temp files left behind
    assert manage.verify(["ptb"], root)[0][1] is True


def test_a_mirror_serving_altered_files_is_rejected(tmp_path, monkeypatch):
    mirror = fake_ptb_mirror(tmp_path, monkeypatch)
    (mirror / "ptb.valid.txt").write_text(" altered \n")
    with pytest.raises(DropbenchError, match="checksum mismatch"):
        manage.download("ptb", tmp_path / "data")
    assert not (tmp_path / "data" / "ptb" / "ptb.valid.txt").exists()


def test_ptb_files_failing_the_checksum_are_reported_not_used(tmp_path, monkeypatch):
    fake_ptb_mirror(tmp_path, monkeypatch)
    root = tmp_path / "data"
    manage.download("ptb", root)
    (root / "ptb" / "ptb.test.txt").write_text(" tampered \n")
    with pytest.raises(DropbenchError, match="ptb.test.txt fails its checksum"):
        text.load_ptb(textdir_cfg(None), root, "cpu")
    name, ok, detail = manage.verify(["ptb"], root)[0]
    assert not ok and "fails its checksum" in detail


def test_ptb_offline_says_where_to_put_the_files(tmp_path):
    cfg = type("Cfg", (), {"download": False, "train_subset": None})
    with pytest.raises(DropbenchError, match="put ptb.train.txt, ptb.valid.txt, ptb.test.txt"):
        text.load_ptb(cfg, tmp_path, "cpu")
