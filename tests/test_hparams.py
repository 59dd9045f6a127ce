"""The hyperparameter view: one line per run through one axis per varying key, coloured by
the best validation metric; left out (with a note) when fewer than two keys vary."""

import json

import matplotlib
import numpy as np
import pandas as pd
import pytest

import dropbench
from dropbench.report.build import write_report
from dropbench.report.hparams import axis_positions, parallel_coordinates
from test_report import make_run


def test_axis_positions_linear_log_and_categories():
    heights, ticks, labels, scale = axis_positions(pd.Series([0.1, 0.3, 0.5]))
    assert scale == "linear" and heights.tolist() == pytest.approx([0.0, 0.5, 1.0])
    assert labels == ["0.1", "0.3", "0.5"] and ticks == pytest.approx([0.0, 0.5, 1.0])
    heights, _, _, scale = axis_positions(pd.Series([1e-3, 1e-2, 1e-1]))  # a factor of 100
    assert scale == "log" and heights.tolist() == pytest.approx([0.0, 0.5, 1.0])
    heights, ticks, labels, scale = axis_positions(pd.Series(["b", "a", "c", "a"]))
    assert scale == "categories" and labels == ["a", "b", "c"]
    assert heights.tolist() == pytest.approx([0.5, 0.0, 1.0, 0.0])


def search_runs(root, n=8):
    """dropout.p and optim.lr (1e-3 to 1e-1) vary; best val acc = 0.95 - p/10 - lr."""
    rng = np.random.default_rng(0)
    scores = {}
    for i in range(n):
        p, lr = float(rng.choice([0.1, 0.3, 0.5])), 10 ** (-3 + 2 * i / (n - 1))
        run = make_run(root / str(i), p=p, seed=i, extra_config={"optim": {"lr": lr}})
        summary = json.loads((run / "summary.json").read_text())
        summary["best_val_acc"] = scores[str(i)] = 0.95 - p / 10 - lr
        (run / "summary.json").write_text(json.dumps(summary))
    return scores


def test_lines_end_at_each_runs_score_and_take_its_colour(tmp_path):
    scores = search_runs(tmp_path / "search")
    out = write_report([tmp_path / "search"])
    assert (out / "parallel_coordinates.png").is_file()
    assert 'id="parallel_coordinates"' in (out / "report.html").read_text()

    runs = dropbench.load_runs(tmp_path / "search")
    assert dict(zip(runs["run"], runs["best_val_acc"], strict=True)) == pytest.approx(scores)
    fig = parallel_coordinates(runs, ["dropout.p", "optim.lr"], "acc")
    ax = fig.axes[0]
    lines = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 3]
    assert len(lines) == len(runs)
    low, high = runs["best_val_acc"].min(), runs["best_val_acc"].max()
    cmap = matplotlib.colormaps["viridis"]
    for line in lines:  # the last axis is the score: find the run by its height there
        height = line.get_ydata()[-1]
        score = low + height * (high - low)
        assert line.get_color() == pytest.approx(cmap((score - low) / (high - low)), abs=1e-6)
    assert lines[-1].get_ydata()[-1] == pytest.approx(1.0)  # the best run is drawn last
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "dropout.p", "optim.lr\n(log scale)", "best val accuracy (%)"]


def test_left_out_with_a_note_when_one_key_varies(tmp_path):
    for i, p in enumerate([0.0, 0.5]):
        make_run(tmp_path / "s" / str(i), p=p)
    out = write_report([tmp_path / "s"])
    assert not (out / "parallel_coordinates.png").exists()
    assert "Hyperparameter view (parallel coordinates) left out" in \
        (out / "report.html").read_text()
