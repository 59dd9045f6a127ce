"""The UCI regression datasets of Gal & Ghahramani 2016 (section 5.3), with the fixed train/test
splits of Hernandez-Lobato & Adams 2015, read from the published folder layout
(`<data_dir>/uci/<folder>/data/`; see docs/uncertainty.md):

data.txt (one example per row), index_features.txt / index_target.txt (0-based columns),
index_train_K.txt / index_test_K.txt (0-based rows of split K), n_splits.txt, n_hidden.txt,
n_epochs.txt, dropout_rates.txt, tau_values.txt (the protocol's settings and grid).

`dataset.validation=true` is the protocol's selection stage: the first 80 % of the split's
training rows (in file order) train and the last 20 % are the val split. With false the whole
training split trains, and val holds the training rows again (scored in eval mode): the test
rows are never used to choose anything. Inputs and the target are standardised with the mean
and std of the rows that train (a std of 0 counts as 1).
"""

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dropbench.data.tensors import RegressionData, Split
from dropbench.data.uci_download import data_folder, download_uci
from dropbench.errors import DropbenchError

log = logging.getLogger("dropbench")

VALIDATION_FRACTION = 0.2  # the last 20 % of a split's training rows validate (the protocol)
FIX = ("the dataset folder is damaged or not in the published layout: delete it and download "
       "it again")


def missing_message(folder: Path, name: str) -> str:
    return (f"UCI dataset {name} is not in {folder}; fetch it with `dropbench data download "
            f"uci --data-dir {folder.parents[2]}` (or dataset.download=true) on a machine "
            f"with internet, or copy the folder there")


def read_numbers(path: Path, what: str) -> np.ndarray:
    """A whitespace-separated table of numbers (2-d), refused in one line when it is not one."""
    if not path.is_file():
        raise DropbenchError(f"{path} is missing ({what}); {FIX}")
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    if not rows:
        raise DropbenchError(f"{path} is empty ({what}); {FIX}")
    widths = {len(r) for r in rows}
    if len(widths) > 1:
        bad = next(i for i, r in enumerate(rows) if len(r) != len(rows[0]))
        raise DropbenchError(f"{path} line {bad + 1} has {len(rows[bad])} values where line 1 "
                             f"has {len(rows[0])} (ragged rows); {FIX}")
    try:
        table = np.array(rows, dtype=np.float64)
    except ValueError:
        raise DropbenchError(f"{path} holds something that is not a number ({what}); "
                             f"{FIX}") from None
    if not np.isfinite(table).all():
        row = int(np.argwhere(~np.isfinite(table))[0][0])
        raise DropbenchError(f"{path} line {row + 1} holds NaN or inf ({what}); {FIX}")
    return table


def read_indices(path: Path, what: str, size: int) -> np.ndarray:
    """0-based indices, one or more per line, each in 0..size-1."""
    values = read_numbers(path, what).ravel()
    if not np.all(values == np.round(values)):
        raise DropbenchError(f"{path} holds non-integer indices ({what}); {FIX}")
    idx = values.astype(np.int64)
    bad = idx[(idx < 0) | (idx >= size)]
    if len(bad):
        raise DropbenchError(f"{path} holds index {int(bad[0])} outside 0..{size - 1} ({what}); "
                             f"{FIX}")
    return idx


def read_int(path: Path, what: str) -> int:
    return int(read_indices(path, what, 10**9).ravel()[0])


@dataclass
class UCISplit:
    """One split of one dataset as arrays on the original scale."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray
    n_splits: int
    n_hidden: int
    n_epochs: int


def read_split(folder: Path, split: int, validation: bool) -> UCISplit:
    """Split `split` of the dataset in `folder` (its data/ directory)."""
    table = read_numbers(folder / "data.txt", "the data table")
    n_rows, n_cols = table.shape
    features = read_indices(folder / "index_features.txt", "the input columns", n_cols)
    target = read_indices(folder / "index_target.txt", "the target column", n_cols)
    if len(target) != 1:
        raise DropbenchError(f"{folder / 'index_target.txt'} names {len(target)} columns where "
                             f"one target belongs; {FIX}")
    n_splits = read_int(folder / "n_splits.txt", "the number of splits")
    if not 0 <= split < n_splits:
        raise DropbenchError(f"dataset.split={split} is out of range: {folder.parent.name} has "
                             f"{n_splits} splits (n_splits.txt); use 0..{n_splits - 1}")
    train = read_indices(folder / f"index_train_{split}.txt", f"split {split}'s training rows",
                         n_rows)
    test = read_indices(folder / f"index_test_{split}.txt", f"split {split}'s test rows", n_rows)
    x, y = table[:, features], table[:, target[0]]
    x_val = y_val = None
    if validation:  # the protocol: the last 20 % of the training rows, in file order
        # the authors' int(0.8 * n) rows train, the rest validate
        n_val = len(train) - int((1 - VALIDATION_FRACTION) * len(train))
        if n_val < 1 or n_val >= len(train):
            raise DropbenchError(f"split {split} has {len(train)} training rows: too few to set "
                                 f"20 % aside; use dataset.validation=false")
        train, val = train[:-n_val], train[-n_val:]
        x_val, y_val = x[val], y[val]
    return UCISplit(x[train], y[train], x_val, y_val, x[test], y[test], n_splits,
                    read_int(folder / "n_hidden.txt", "the protocol's hidden width"),
                    read_int(folder / "n_epochs.txt", "the protocol's epochs / 100"))


@dataclass(frozen=True)
class Grid:
    """What the protocol runs for a dataset: its (p, tau) grid, splits, width and epochs."""

    rates: list[float]
    taus: list[float]
    n_splits: int
    n_hidden: int
    epochs: int  # n_epochs.txt x 100, as the authors' code trains


def read_grid(root: Path, name: str, download: bool) -> Grid:
    """The protocol's settings for dataset `name` under data_dir `root`, fetched first when
    missing and `download` is on."""
    folder = data_folder(root, name)
    if not (folder / "data.txt").is_file():
        if not download:
            raise DropbenchError(missing_message(folder, name) + " (dataset.download=false)")
        download_uci(name, root)
    return Grid(rates=[float(v) for v in read_numbers(folder / "dropout_rates.txt",
                                                      "the grid's dropout rates").ravel()],
                taus=[float(v) for v in read_numbers(folder / "tau_values.txt",
                                                     "the grid's tau values").ravel()],
                n_splits=read_int(folder / "n_splits.txt", "the number of splits"),
                n_hidden=read_int(folder / "n_hidden.txt", "the protocol's hidden width"),
                epochs=100 * read_int(folder / "n_epochs.txt", "the protocol's epochs / 100"))


def standardiser(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std over rows (axis 0); a constant column's std counts as 1."""
    mean, std = values.mean(axis=0), values.std(axis=0)
    return mean, np.where(std == 0, 1.0, std)


def to_bundle(s: UCISplit, tau: float, lengthscale: float, device) -> RegressionData:
    x_mean, x_std = standardiser(s.x_train)
    y_mean, y_std = standardiser(s.y_train)

    def prep(x, y) -> Split:
        xs = torch.tensor((x - x_mean) / x_std, dtype=torch.float32)
        ys = torch.tensor((y - y_mean) / y_std, dtype=torch.float32)
        return Split(xs.to(device), ys.to(device))

    train = prep(s.x_train, s.y_train)
    has_val = s.x_val is not None
    return RegressionData(
        train=train,
        val=prep(s.x_val, s.y_val) if has_val else train,
        test=prep(s.x_test, s.y_test),
        input_shape=(s.x_train.shape[1],),
        y_mean=float(y_mean), y_std=float(y_std), tau=float(tau),
        lengthscale=float(lengthscale), val_is="validation" if has_val else "train",
    )


def load_uci(cfg, root: Path, device) -> RegressionData:
    """dataset=uci: dataset.name (boston, ..., yacht: each registered under its short name),
    dataset.split, dataset.validation, dataset.tau, dataset.lengthscale."""
    folder = data_folder(root, cfg.name)
    if not (folder / "data.txt").is_file():
        if not cfg.download:
            raise DropbenchError(missing_message(folder, cfg.name) + " (dataset.download=false)")
        download_uci(cfg.name, root)
    s = read_split(folder, cfg.split, cfg.validation)
    log.info("uci %s split %d: %d train / %s val / %d test rows, %d inputs (the protocol: "
             "n_hidden=%d, %d epochs)", cfg.name, cfg.split, len(s.y_train),
             len(s.y_val) if s.y_val is not None else "no", len(s.y_test), s.x_train.shape[1],
             s.n_hidden, s.n_epochs * 100)
    return to_bundle(s, cfg.tau, cfg.lengthscale, device)
