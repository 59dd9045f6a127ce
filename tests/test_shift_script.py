"""scripts/shift.py end to end on the real 10k-digit MNIST sample, at the smallest settings:
it trains both models through the CLI, scores the rotated test digits and writes the CSV, the
figures and its own section of uncertainty.md. Skipped where the sample is absent."""

import subprocess
import sys

import pandas as pd
import pytest

from conftest import REPO
from dropbench.data.mnist_sample import default_sample_dir

SAMPLE = default_sample_dir(REPO)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (SAMPLE / "t10k-images-idx3-ubyte.gz").is_file(),
                       reason=f"the real MNIST sample is not in {SAMPLE}"),
]


def test_the_shift_study_runs_end_to_end(tmp_path):
    out = tmp_path / "docs"
    command = [sys.executable, str(REPO / "scripts" / "shift.py"), "--data-dir", str(SAMPLE),
               "--work", str(tmp_path / "work"), "--out", str(out), "--seeds", "0",
               "--epochs", "1", "--samples", "3", "--step", "90"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr
    rows = pd.read_csv(out / "results" / "shift_rotation.csv")
    assert sorted(rows["angle"].unique()) == [0, 90, 180]
    assert set(rows["model"]) == {"no dropout", "dropout, weight scaling", "MC dropout"}
    assert rows.groupby("model").size().eq(3).all()
    unrotated = rows[rows["angle"] == 0]
    assert (unrotated["acc"] > 0.8).all()  # one epoch on 7,000 real digits
    assert (rows[rows["angle"] == 90]["acc"] < unrotated["acc"].min()).all()
    page = (out / "uncertainty.md").read_text()
    assert "## Classifiers: calibration and dataset shift" in page and "2,000 as test" in page
    assert (out / "results" / "shift_rotation.png").stat().st_size > 0
    assert (out / "results" / "shift_reliability.png").stat().st_size > 0
