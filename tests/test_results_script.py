"""scripts/results.py: every sweep of every study (full and --quick) composes into a valid
config, and the page's table turns the report's summary into percent errors."""

import sys

import pandas as pd
import pytest

from conftest import REPO
from dropbench.config import validate

sys.path.insert(0, str(REPO / "scripts"))
results = pytest.importorskip("results")
results_page = pytest.importorskip("results_page")


def grid(overrides: list[str]) -> list[list[str]]:
    """The jobs of one `-m` sweep: every combination of the comma lists."""
    jobs = [[]]
    for item in overrides:
        key, _, value = item.partition("=")
        values = value.split(",") if "," in value and "[" not in value else [value]
        jobs = [job + [f"{key}={v}"] for job in jobs for v in values]
    return jobs


@pytest.mark.parametrize("quick", [False, True])
def test_every_study_sweep_composes_and_validates(compose, quick):
    plan = results.studies(quick)
    assert [s.name for s in plan] == ["rate_sweep", "schemes", "lenet", "regularisers", "mc",
                                      "small_data", "transformer"]
    for study in plan:
        for sweep in study.sweeps:
            for job in grid(["dataset=mnist", "dataset.val_size=1000", *sweep.overrides]):
                validate(compose(job))


def test_study_table_reads_errors_in_percent():
    summary = pd.DataFrame({
        "configuration": ["none", "p=0.5"], "n": [3, 3],
        "test_acc_mean": [0.96, 0.975], "test_acc_std": [0.002, 0.001],
        "best_val_acc_mean": [0.95, 0.97], "best_val_acc_std": [0.01, 0.0],
        "final_gap_acc_mean": [0.04, 0.01], "final_gap_acc_std": [0.0, 0.0],
        "best_epoch_mean": [12.0, 19.3]})
    table = results_page.study_table(summary, ["dropout.p"])
    assert table["test error (%)"].tolist() == ["4.00 ± 0.20", "2.50 ± 0.10"]
    assert table["val error (%)"].tolist()[1] == "3.00 ± 0.00"
    assert table["best epoch"].tolist() == ["12.0", "19.3"]


def test_small_data_rows_sort_by_size_as_numbers():
    summary = pd.DataFrame({"dataset.train_subset": [2000, 500, 7000, 500],
                            "dropout.name": ["none", "standard", "none", "none"]})
    ordered = results_page.numeric_order(summary, ["dataset.train_subset", "dropout.name"])
    assert ordered["dataset.train_subset"].tolist() == [500, 500, 2000, 7000]
    assert ordered["dropout.name"].tolist()[:2] == ["none", "standard"]


def test_max_norm_note_reads_the_projection_counts(tmp_path):
    """The page says how often max-norm acted in each run, and that it never did when every
    count is zero; studies without max-norm get no note."""
    def run(sweep: str, seed: int, counts):
        job = tmp_path / sweep / f"seed={seed}"
        job.mkdir(parents=True)
        columns = "epoch,val_loss" + (",max_norm_projected" if counts is not None else "")
        rows = [f"{i + 1},0.5" + (f",{c}" if counts is not None else "")
                for i, c in enumerate(counts or [0, 0])]
        (job / "metrics.csv").write_text("\n".join([columns, *rows]) + "\n")

    run("none", 0, None)
    assert results_page.max_norm_note(tmp_path) is None
    run("max_norm", 0, [0, 0])
    run("max_norm", 1, [0, 0])
    assert "`max_norm` 0, 0. The constraint never acted" in results_page.max_norm_note(tmp_path)
    run("dropout_max_norm", 0, [120, 7])
    note = results_page.max_norm_note(tmp_path)
    assert "`dropout_max_norm` 127" in note and "never acted" not in note
