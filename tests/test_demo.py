"""`dropbench demo` end to end on the embedded digits: runs, report, and a verdict that tells
the overfitting story."""

import json
import re

import pandas as pd

from dropbench.demo import ARMS, SEEDS


def test_demo_trains_both_arms_writes_the_report_and_prints_the_verdict(cli, tmp_path):
    result = cli("demo", "--out", "demo")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    html = tmp_path / "demo" / "report" / "report.html"
    assert lines[-1] == str(html.resolve())
    assert html.is_file() and "overfitting_curves" in html.read_text()
    runs = sorted((tmp_path / "demo").glob("*/summary.json"))
    summaries = [json.loads(p.read_text()) for p in runs]
    assert len(summaries) == len(ARMS) * len(SEEDS)
    assert all(s["status"] == "completed" for s in summaries)

    accuracy, gap = lines[-3], lines[-2]
    on_val, on_test, off_val, off_test = map(float, re.findall(r"([\d.]+) %", accuracy))
    on_gap, off_gap = map(float, re.findall(r"(-?[\d.]+) pp", gap))
    without, with_dropout = summaries[: len(SEEDS)], summaries[len(SEEDS):]
    mean = lambda runs, key: 100 * sum(s[key] for s in runs) / len(runs)  # noqa: E731
    assert abs(on_test - mean(with_dropout, "test_acc")) < 0.051
    assert abs(off_val - mean(without, "best_val_acc")) < 0.051
    assert "completed: best epoch" in (tmp_path / "demo" / "0" / "train.log").read_text()
    last = pd.read_csv(tmp_path / "demo" / "0" / "metrics.csv").iloc[-1]
    assert last["train_eval_acc"] == 1.0  # the net without dropout memorises its 150 digits
    # the story the demo exists to tell, on these seeds
    assert on_test > off_test and on_val > off_val and on_gap < off_gap


def test_demo_refuses_a_folder_that_holds_something(cli, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    result = cli("demo", "--out", "full")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "not empty" in result.stderr
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
