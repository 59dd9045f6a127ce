"""The README's comparison on real digits: the default MLP with the README's dropout rates
against the same net without dropout, same optimiser, on the 10k-digit real MNIST sample
(8,000 train of which 1,000 validation, 2,000 test). Skipped where the sample is absent, as on
a user's machine."""

import json
import statistics

import pytest

from conftest import REPO
from dropbench.data.mnist_sample import SAMPLE_VAL_SIZE, carve_mnist_sample, default_sample_dir

SAMPLE = default_sample_dir(REPO)
SEEDS = "0,1,2"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (SAMPLE / "t10k-images-idx3-ubyte.gz").is_file(),
                       reason=f"the real MNIST sample is not in {SAMPLE}"),
]


def mean_test_acc(sweep_dir) -> float:
    summaries = [json.loads(p.read_text()) for p in sweep_dir.glob("*/summary.json")]
    assert len(summaries) == len(SEEDS.split(","))
    assert all(s["status"] == "completed" for s in summaries)
    return statistics.mean(s["test_acc"] for s in summaries)


def test_readme_dropout_beats_no_dropout_on_real_digits(cli, tmp_path):
    data = carve_mnist_sample(SAMPLE, tmp_path / "mnist")
    common = ["-m", "dataset=mnist", f"data_dir={data}", "dataset.download=false",
              f"dataset.val_size={SAMPLE_VAL_SIZE}", "trainer.epochs=20", f"seed={SEEDS}",
              "trainer.threads=1", "trainer.progress=false", "~hydra.callbacks.report"]
    arms = {"dropout": ["dropout.p=0.5", "dropout.p_input=0.2"], "none": ["dropout=none"]}
    accuracy = {}
    for arm, overrides in arms.items():
        result = cli("train", *common, *overrides, f"hydra.sweep.dir={arm}", timeout=3600)
        assert result.returncode == 0, result.stderr
        accuracy[arm] = mean_test_acc(tmp_path / arm)
    assert accuracy["dropout"] > accuracy["none"], accuracy
