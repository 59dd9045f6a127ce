"""Calibration metrics (NLL, Brier, ECE, reliability bins) against hand computation and a
seeded calibrated/miscalibrated population; the rotation used by the dataset-shift study;
eval_compare's calibration block from a real (tiny) run."""

import json
import math
import sys

import pytest
import torch

from conftest import REPO
from dropbench.engine import calibration
from dropbench.engine.mc import curve_and_predictive
from dropbench.engine.shift import load_run, rotate, shift_rows
from dropbench.errors import DropbenchError

# Five examples over three classes: (probabilities, label). Confidences 0.5 and 0.52 share
# bin 7 = (7/15, 8/15]; 0.85 is in bin 12, 0.9 in bin 13, and 1.0 lies on the top edge, which
# belongs to the last bin (bins are closed on the right).
HAND = [([0.5, 0.3, 0.2], 0), ([0.52, 0.28, 0.2], 1), ([0.9, 0.05, 0.05], 0),
        ([1.0, 0.0, 0.0], 0), ([0.1, 0.85, 0.05], 2)]


def hand_case():
    probs = torch.tensor([p for p, _ in HAND], dtype=torch.float64)
    return probs.log(), torch.tensor([y for _, y in HAND])


def test_ece_and_bins_match_the_hand_computation():
    log_probs, y = hand_case()
    table = calibration.reliability(log_probs, y)
    filled = {b: (row["count"], row["accuracy"], row["confidence"])
              for b, row in enumerate(table) if row["count"]}
    assert filled.keys() == {7, 12, 13, 14}
    assert filled[7][:2] == (2, 0.5) and filled[7][2] == pytest.approx(0.51)
    assert filled[14] == (1, 1.0, 1.0)  # confidence exactly 1: the last bin, not past it
    assert all(row["accuracy"] is None for row in table if not row["count"])
    # 2/5 |0.5 - 0.51| + 1/5 |0 - 0.85| + 1/5 |1 - 0.9| + 1/5 |1 - 1|
    assert calibration.ece(log_probs, y) == pytest.approx(0.004 + 0.17 + 0.02 + 0.0, abs=1e-12)


def test_a_confidence_on_a_bin_edge_goes_to_the_lower_bin():
    edges = torch.tensor([0.2, 0.4, 0.6, 0.8, 1.0], dtype=torch.float64)  # 3/15, 6/15, ...
    assert calibration.bin_index(edges).tolist() == [2, 5, 8, 11, 14]
    assert calibration.bin_index(edges + 1e-9).tolist() == [3, 6, 9, 12, 14]
    assert calibration.bin_index(torch.tensor([0.0])).tolist() == [0]


def test_brier_sums_over_classes_and_nll_matches_the_hand_computation():
    log_probs, y = hand_case()
    per_example = [0.25 + 0.09 + 0.04, 0.52**2 + 0.72**2 + 0.04, 0.01 + 0.0025 + 0.0025, 0.0,
                   0.1**2 + 0.85**2 + 0.95**2]
    assert calibration.brier(log_probs, y) == pytest.approx(sum(per_example) / 5, abs=1e-12)
    nll = -(math.log(0.5) + math.log(0.28) + math.log(0.9) + 0.0 + math.log(0.05)) / 5
    assert calibration.nll(log_probs, y) == pytest.approx(nll, abs=1e-12)
    # zero probabilities (log = -inf) of wrong classes: entropy stays finite
    assert math.isfinite(calibration.entropy(log_probs))


def test_nll_stays_finite_where_the_probability_underflows():
    logits = torch.tensor([[0.0, -200.0], [0.0, 0.0]])  # p(class 1) = e^-200: 0 in float32
    y = torch.tensor([1, 0])
    assert torch.softmax(logits, 1)[0, 1] == 0  # the naive prob -> log would give inf
    log_probs = torch.log_softmax(logits, 1)
    assert calibration.nll(log_probs, y) == pytest.approx((200.0 + math.log(2)) / 2, rel=1e-6)


class Split:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)


def test_the_mc_predictive_is_the_log_of_the_mean_probability_and_stays_finite():
    model = torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.Linear(4, 3))
    g = torch.Generator().manual_seed(0)
    split = Split(torch.randn(6, 4, generator=g), torch.tensor([0, 1, 2, 0, 1, 2]))
    torch.manual_seed(3)
    _, kept = curve_and_predictive(model, split, [1, 2], keep=5)
    torch.manual_seed(3)  # the same masks, drawn by hand
    model.train()
    with torch.no_grad():
        mean = torch.stack([torch.softmax(model(split.x), 1) for _ in range(5)]).mean(0)
    assert torch.allclose(kept, mean.log(), atol=1e-5)
    with torch.no_grad():  # logits 400 apart: every pass's smaller probabilities underflow
        model[1].weight.mul_(1e3)
    _, kept = curve_and_predictive(model, split, [1], keep=4)
    assert torch.isfinite(kept).all() and kept.min() < -100


def synthetic(n: int, calibrated: bool, seed: int = 0):
    """n predictions over 10 classes with confidence c ~ U(0.15, 1) on a random class, the
    rest spread evenly; the label is that class with probability c (calibrated) or c^2
    (overconfident), else one of the other nine."""
    g = torch.Generator().manual_seed(seed)
    k = 10
    c = 0.15 + 0.85 * torch.rand(n, generator=g, dtype=torch.float64)
    top = torch.randint(0, k, (n,), generator=g)
    probs = ((1 - c) / (k - 1))[:, None].repeat(1, k)
    probs[torch.arange(n), top] = c
    hit = torch.rand(n, generator=g, dtype=torch.float64) < (c if calibrated else c**2)
    other = (top + torch.randint(1, k, (n,), generator=g)) % k
    return probs.log(), torch.where(hit, top, other)


def test_calibrated_predictions_have_ece_near_zero_and_overconfident_ones_do_not():
    # 100,000 examples over ~13 filled bins: the sampling noise of each bin's accuracy is
    # about sqrt(0.25 / 7,000) = 0.006, so a calibrated ECE stays below 0.01.
    assert calibration.ece(*synthetic(100_000, calibrated=True)) < 0.01
    # accuracy c^2 against confidence c, c ~ U(0.15, 1): every gap c - c^2 is positive, so
    # ECE = E[c] - E[c^2] = 0.575 - (1 - 0.15^3) / (3 * 0.85) = 0.1842
    expected = 0.575 - (1 - 0.15**3) / (3 * 0.85)
    assert calibration.ece(*synthetic(100_000, calibrated=False)) == pytest.approx(expected,
                                                                                   abs=0.01)


def test_rotation_by_zero_and_twice_by_180_is_the_identity():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 1, 28, 28, generator=g)
    assert torch.allclose(rotate(x, 0.0), x, atol=1e-5)
    assert torch.allclose(rotate(rotate(x, 180.0), 180.0), x, atol=1e-5)
    assert torch.allclose(rotate(x, 180.0), x.flip(2, 3), atol=1e-5)
    assert not torch.allclose(rotate(x, 90.0), x, atol=0.1)  # it does turn


def test_rotation_turns_anticlockwise_and_fills_with_the_background():
    x = torch.full((1, 1, 28, 28), -0.4)
    x[0, 0, 2, 20:26] = 2.0  # a bar near the top right
    turned = rotate(x, 90.0, background=-0.4)
    assert torch.allclose(turned, torch.rot90(x, 1, dims=(2, 3)), atol=1e-5)  # to the left
    corners = rotate(torch.full((1, 1, 28, 28), -0.4), 45.0, background=-0.4)
    assert torch.allclose(corners, torch.full_like(corners, -0.4), atol=1e-6)


def test_compare_writes_calibration_of_both_predictives(compose, tmp_path):
    from dropbench.engine import train

    cfg = compose(["eval.compare=true", "eval.mc_samples=4", "eval.curve=[1,2]",
                   "model.hidden=[32]", "trainer.epochs=2", "trainer.progress=false",
                   f"data_dir={tmp_path}", "device=cpu"])
    train(cfg, tmp_path / "run")
    summary = json.loads((tmp_path / "run/summary.json").read_text())
    block = summary["eval_compare"]["calibration"]
    assert block["bins"] == 15 and block["mc"]["samples"] == 4
    n_test = sum(row["count"] for row in block["scale"]["bins"])
    assert n_test == 297  # the embedded digits' test split
    for method in ("scale", "mc"):
        scores = block[method]
        assert len(scores["bins"]) == 15 and sum(r["count"] for r in scores["bins"]) == n_test
        assert scores["ece"] == pytest.approx(calibration.ece_of(scores["bins"]))
        assert 0 <= scores["ece"] <= 1 and 0 <= scores["brier"] <= 2 and scores["nll"] > 0
    scale = summary["eval_compare"]["scale"]
    assert block["scale"]["acc"] == pytest.approx(scale["test_acc"])
    assert block["scale"]["nll"] == pytest.approx(scale["test_loss"], rel=1e-4)
    assert block["mc"]["acc"] == pytest.approx(summary["eval_compare"]["mc"]["test_acc"])

    # the shift study rebuilds the run from its dir: unrotated, it scores what the run did
    _, model, data = load_run(tmp_path / "run")
    rows = shift_rows(model, data.test, [0.0, 90.0], samples=3, mc=True)
    assert [(r["angle"], r["method"]) for r in rows] == [(0.0, "scale"), (0.0, "mc"),
                                                        (90.0, "scale"), (90.0, "mc")]
    assert rows[0]["acc"] == pytest.approx(summary["test_acc"])
    assert rows[0]["nll"] == pytest.approx(summary["test_loss"], rel=1e-4)
    assert rows[2]["acc"] < rows[0]["acc"]  # turned digits are harder


def test_a_dir_without_a_finished_run_is_refused_in_one_line(tmp_path):
    with pytest.raises(DropbenchError, match="not a finished run dir"):
        load_run(tmp_path)


def test_the_shift_section_replaces_only_its_own_part_of_the_page(tmp_path):
    sys.path.insert(0, str(REPO / "scripts"))
    shift = pytest.importorskip("shift")
    page = tmp_path / "uncertainty.md"
    page.write_text("# Uncertainty\n\n## Regression\n\nkeep me\n")
    shift.write_section(page, f"{shift.HEADING}\n\nfirst\n")
    shift.write_section(page, f"{shift.HEADING}\n\nsecond\n")
    text = page.read_text()
    assert "keep me" in text and "second" in text and "first" not in text
    page.write_text(f"# U\n\n{shift.HEADING}\n\nold\n\n## Regression\n\nkeep me\n")
    shift.write_section(page, f"{shift.HEADING}\n\nnew\n")
    assert page.read_text() == f"# U\n\n{shift.HEADING}\n\nnew\n\n## Regression\n\nkeep me\n"
