"""Every preset's `paper:` block goes through the paper-vs-ours table in the unit the table
compares in: a run that lands exactly on the paper's number differs from it by 0."""

import pandas as pd
import pytest

from conftest import REPO
from dropbench.report.build import write_report
from test_report import make_run

PRESETS = sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml"))


def summary_fields_at(metric: str, value: float) -> dict:
    """The summary.json fields of a run whose `metric` reads exactly `value` in the table's
    unit: error and accuracy in percent (as papers quote them), perplexity as is."""
    if metric.endswith("_error"):
        return {metric[: -len("_error")] + "_acc": 1.0 - value / 100.0}
    if metric.endswith("_acc"):
        return {metric: value / 100.0}
    return {metric: value}


def preset_paper_blocks(compose) -> dict:
    blocks = {}
    for name in PRESETS:
        cfg = compose([f"+experiment={name}"])
        if cfg.get("paper") is not None:
            blocks[name] = dict(cfg.paper)
    return blocks


def test_every_paper_preset_has_a_block(compose):
    blocks = preset_paper_blocks(compose)
    assert len(blocks) >= 8  # Srivastava (4), LeNet, Zaremba (3), Gal, AWD-LSTM
    for name, block in blocks.items():
        assert {"ref", "table", "metric", "value"} <= set(block), name


@pytest.mark.parametrize("name", PRESETS)
def test_a_run_at_the_papers_value_differs_by_zero(compose, tmp_path, name):
    cfg = compose([f"+experiment={name}"])
    if cfg.get("paper") is None:
        pytest.skip(f"{name} states no paper number")
    paper = {k: cfg.paper[k] for k in ("ref", "table", "metric", "value")}
    run = make_run(tmp_path / "run", extra_config={"paper": paper})
    summary = pd.read_json(run / "summary.json", typ="series").to_dict()
    summary.update(summary_fields_at(paper["metric"], float(paper["value"])))
    pd.Series(summary).to_json(run / "summary.json")
    table = pd.read_csv(write_report([tmp_path]) / "paper_vs_ours.csv")
    assert len(table) == 1
    assert table.loc[0, "paper"] == pytest.approx(float(paper["value"]))
    assert table.loc[0, "difference"] == pytest.approx(0.0, abs=1e-9)


def test_a_run_one_point_worse_than_the_paper_reads_plus_one(tmp_path):
    """1.06 % error in the paper, 2.06 % in the run: +1.00 percentage point, not +2.05."""
    paper = {"ref": "r", "table": "t", "metric": "test_error", "value": 1.06}
    make_run(tmp_path / "run", test_acc=1.0 - 0.0206, extra_config={"paper": paper})
    table = pd.read_csv(write_report([tmp_path]) / "paper_vs_ours.csv")
    assert table.loc[0, "difference"] == pytest.approx(1.0)
