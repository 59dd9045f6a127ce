"""Carve the 10,000-digit real MNIST sample (the official test split, gzipped IDX) into a
train/test pair that the MNIST loader reads as if it were full MNIST.

The first `n_train` digits become `MNIST/raw/train-*`, the rest `MNIST/raw/t10k-*`, so
`dropbench train dataset=mnist data_dir=ROOT dataset.download=false dataset.val_size=1000`
trains on real digits offline. Numbers from it describe a 10k-digit sample, not full MNIST.
"""

import gzip
from pathlib import Path

from dropbench.data.idx import IdxError, parse_idx, write_idx
from dropbench.errors import DropbenchError

SAMPLE_IMAGES = "t10k-images-idx3-ubyte.gz"
SAMPLE_LABELS = "t10k-labels-idx1-ubyte.gz"
DEFAULT_TRAIN = 8_000
# The loader carves validation off the train files; MNIST's default (10,000) is more than the
# carved train split holds, so runs on the sample set dataset.val_size to this.
SAMPLE_VAL_SIZE = 1_000


def default_sample_dir(repo_root: Path) -> Path:
    """Where tests and scripts look for the sample: a `shared/data/mnist-sample` folder next to
    the checkout (absent on a user's machine, so callers skip)."""
    return repo_root.parent / "shared" / "data" / "mnist-sample"


def carve_mnist_sample(sample_dir: Path, root: Path, n_train: int = DEFAULT_TRAIN) -> Path:
    """Write MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte under `root` from the
    sample in `sample_dir`; returns `root` (the value for `data_dir`)."""
    sample_dir, root = Path(sample_dir), Path(root)
    missing = [f for f in (SAMPLE_IMAGES, SAMPLE_LABELS) if not (sample_dir / f).is_file()]
    if missing:
        raise DropbenchError(f"{sample_dir} lacks {', '.join(missing)}; point at the folder "
                             f"that holds the gzipped MNIST test-split IDX files")
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for sample_name, kind in ((SAMPLE_IMAGES, "images-idx3"), (SAMPLE_LABELS, "labels-idx1")):
        with gzip.open(sample_dir / sample_name, "rb") as f:
            try:
                items = parse_idx(f.read())
            except IdxError as e:
                raise DropbenchError(f"the MNIST sample is damaged ({e}); copy it "
                                     f"again") from None
        if not 0 < n_train < len(items):
            raise DropbenchError(f"cannot keep {n_train} of the sample's {len(items)} digits "
                                 f"for training; choose a number between 1 and "
                                 f"{len(items) - 1}")
        write_idx(raw / f"train-{kind}-ubyte", items[:n_train])
        write_idx(raw / f"t10k-{kind}-ubyte", items[n_train:])
    return root
