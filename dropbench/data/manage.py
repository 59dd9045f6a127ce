"""`dropbench data download|verify`: fetch datasets ahead of time (e.g. on a cluster's login
node) and check what a data directory holds."""

import os
from pathlib import Path

from dropbench.data.cifar import CIFAR10_FOLDER, cifar10_splits
from dropbench.data.text import ptb_files
from dropbench.data.vision import digits_arrays, mnist_splits
from dropbench.errors import DropbenchError


def default_data_dir() -> Path:
    return Path(os.environ.get("DROPBENCH_DATA", "~/.cache/dropbench")).expanduser()


def _digits(root: Path, download: bool) -> str:
    return f"{len(digits_arrays()[1])} images, bundled with scikit-learn"


def _mnist(root: Path, download: bool) -> str:
    (x_train, _), (x_test, _) = mnist_splits(root, download)
    return f"{len(x_train)} train + {len(x_test)} test images in {root / 'MNIST'}"


def _cifar10(root: Path, download: bool) -> str:
    (x_train, _), (x_test, _) = cifar10_splits(root, download, checksums=True)
    return f"{len(x_train)} train + {len(x_test)} test images in {root / CIFAR10_FOLDER}"


def _ptb(root: Path, download: bool) -> str:
    files = ptb_files(root, download)  # raises on a missing file or a failed checksum
    lines = sum(len(f.read_text(encoding="utf-8").splitlines()) for f in files.values())
    return f"{lines} lines in {', '.join(f.name for f in files.values())}, md5 verified"


def _uci(root: Path, download: bool) -> str:
    from dropbench.data.uci_download import download_all

    return download_all(root, download)


# name -> fn(root, download) that loads the dataset (fetching it if allowed) and describes it
CHECKS = {"digits": _digits, "mnist": _mnist, "cifar10": _cifar10, "ptb": _ptb, "uci": _uci}


def _check(name: str):
    if name not in CHECKS:
        raise DropbenchError(f"unknown dataset {name!r}; choose one of {', '.join(CHECKS)}")
    return CHECKS[name]


GZIP_MAGIC = b"\x1f\x8b"


def damaged_archives(root: Path) -> list[Path]:
    """The .gz files under the data dir that are not gzip at all (a failed download saved
    as an HTML page, a truncated copy): a download trips over them, not over the network."""
    damaged = []
    for path in sorted(root.rglob("*.gz")) if root.is_dir() else []:
        try:
            with path.open("rb") as f:
                if f.read(2) != GZIP_MAGIC:
                    damaged.append(path)
        except OSError:
            damaged.append(path)
    return damaged


def download(name: str, root: Path) -> str:
    try:
        return _check(name)(root, True)
    except DropbenchError:
        damaged = damaged_archives(root)
        if damaged:
            raise DropbenchError(f"{damaged[0]} is damaged (not a gzip archive); delete "
                                 f"{damaged[0]} and download again: `dropbench data download "
                                 f"{name} --data-dir {root}`") from None
        raise


def verify(names: list[str], root: Path) -> list[tuple[str, bool, str]]:
    """(name, ok, detail) for each dataset; never downloads."""
    results = []
    for name in names or list(CHECKS):
        try:
            results.append((name, True, _check(name)(root, False)))
        except DropbenchError as e:
            results.append((name, False, str(e)))
        except Exception as e:  # a damage no check names yet: still one row, with the fix
            text = str(e).strip()
            results.append((name, False, f"unreadable ({type(e).__name__}: "
                                         f"{text.splitlines()[0] if text else ''}); delete its "
                                         f"files under {root} and run `dropbench data download "
                                         f"{name}`"))
    return results
