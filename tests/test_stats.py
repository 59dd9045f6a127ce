"""Statistics in the report: Welch and paired t tests and Holm's correction against values
computed independently (scipy's own tests, and the textbook formulas with numpy), baseline
choice, and the significance table in summary.md / summary.csv / report.html."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from dropbench import DropbenchError
from dropbench.report import stats
from dropbench.report.build import write_report
from test_report import make_run


def test_welch_matches_the_textbook_formulas():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([4.0, 6.0, 8.0])
    c = stats.welch(a, b)
    # By hand: means 2 and 6, sample variances 1 and 4, so se^2 = 1/3 + 4/3 = 5/3 and
    # df = (5/3)^2 / ((1/3)^2/2 + (4/3)^2/2) = (25/9) / (17/18) = 50/17.
    se, df = math.sqrt(5 / 3), 50 / 17
    assert c.diff == pytest.approx(-4.0)
    half = sps.t.ppf(0.975, df) * se
    assert (c.ci_low, c.ci_high) == pytest.approx((-4.0 - half, -4.0 + half))
    assert c.p == pytest.approx(2 * sps.t.sf(4.0 / se, df))
    assert c.p == pytest.approx(sps.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-9)
    assert not c.paired


def test_paired_test_uses_per_seed_differences():
    a, b = np.array([0.96, 0.98, 0.95]), np.array([0.90, 0.94, 0.92])
    c = stats.paired(a, b)
    # differences 0.06, 0.04, 0.03: mean 0.04333, sample sd 0.015275, se = sd / sqrt(3),
    # t = 4.9135 on 2 df, p = 0.0390 (t table), 95 % CI 0.04333 +- 4.3027 * 0.008819
    assert c.diff == pytest.approx(0.043333, abs=1e-6)
    assert c.p == pytest.approx(0.0390, abs=5e-4)
    assert (c.ci_low, c.ci_high) == pytest.approx((0.005388, 0.081279), abs=1e-5)
    assert c.p == pytest.approx(sps.ttest_rel(a, b).pvalue, rel=1e-9)


def test_holm_step_down_by_hand():
    # sorted: 0.01 * 3 = 0.03; 0.03 * 2 = 0.06; 0.04 * 1 = 0.04 -> kept monotone at 0.06
    adjusted = stats.holm([0.01, 0.04, 0.03, math.nan])
    assert adjusted[:3] == pytest.approx([0.03, 0.06, 0.06])
    assert math.isnan(adjusted[3])
    assert stats.holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])  # capped at 1


def test_seeds_pair_only_when_both_sides_hold_the_same_seeds():
    base = pd.DataFrame({"seed": [0, 1, 2], "x": [1.0, 2.0, 4.0]})
    same = pd.DataFrame({"seed": [2, 0, 1], "x": [5.0, 2.0, 3.0]})  # order does not matter
    other = pd.DataFrame({"seed": [0, 1, 5], "x": [2.0, 3.0, 5.0]})
    assert stats.compare_runs(same, base, "x").paired
    assert stats.compare_runs(same, base, "x").diff == pytest.approx(1.0)
    assert not stats.compare_runs(other, base, "x").paired


def test_too_few_seeds_and_no_spread_are_said_plainly():
    one = stats.welch(np.array([0.9]), np.array([0.8, 0.85]))
    assert math.isnan(one.p) and stats.verdict(one, math.nan, True) == \
        "too few runs to test (n < 2)"
    flat = stats.welch(np.array([0.9, 0.9]), np.array([0.8, 0.8]))
    assert math.isnan(flat.p) and "no spread" in stats.verdict(flat, math.nan, True)
    assert math.isnan(flat.ci_low) and math.isnan(flat.ci_high)  # no zero-width "certainty"
    same_moves = stats.paired(np.array([0.9, 0.95, 0.97]), np.array([0.9, 0.95, 0.97]))
    assert same_moves.diff == 0 and math.isnan(same_moves.ci_low) and math.isnan(same_moves.p)
    two = stats.welch(np.array([0.90, 0.91]), np.array([0.80, 0.81]))
    assert stats.verdict(two, two.p, True).endswith("(n < 3: treat with caution)")


def runs_frame(rows):
    """rows: (group, seed, value, dropout_off)"""
    return pd.DataFrame(rows, columns=["group", "seed", "test_acc", "dropout_off"])


def test_verdict_names_direction_and_noise():
    rows = [("none", s, 0.80 + s / 1000, True) for s in range(4)]
    rows += [("good", s, 0.90 + (s % 2) / 1000, False) for s in range(4)]
    rows += [("bad", s, 0.70 - (s % 2) / 1000, False) for s in range(4)]
    rows += [("same", s, 0.80 + (-1) ** s * 0.01, False) for s in range(4)]
    table = stats.significance_table(runs_frame(rows), {"good": "none", "bad": "none",
                                                        "same": "none"}, "test_acc", True)
    verdicts = dict(zip(table["configuration"], table["verdict"], strict=True))
    assert verdicts == {"good": "significantly better", "bad": "significantly worse",
                        "same": "within noise"}
    # lower is better (perplexity): the same sign reads the other way
    table = stats.significance_table(runs_frame(rows), {"good": "none"}, "test_acc", False)
    assert table["verdict"].iloc[0] == "significantly worse"


def test_baseline_is_no_dropout_else_lowest_rate_per_line():
    runs = pd.DataFrame({
        "group": ["a0", "a5", "b1", "b5"], "dropout.name": ["a", "a", "b", "b"],
        "dropout.p": [0.0, 0.5, 0.1, 0.5], "dropout_off": [False] * 4})
    groups = ["a0", "a5", "b1", "b5"]
    by = ["dropout.name", "dropout.p"]
    assert stats.pick_baselines(runs, groups, by, "dropout.p", None) == {"a5": "a0", "b5": "b1"}
    runs.loc[0, "dropout_off"] = True
    assert stats.pick_baselines(runs, groups, by, "dropout.p", None) == \
        {"a5": "a0", "b1": "a0", "b5": "a0"}
    chosen = stats.pick_baselines(runs, groups, by, "dropout.p", "dropout.name=b,dropout.p=0.5")
    assert chosen == {"a0": "b5", "a5": "b5", "b1": "b5"}
    # two no-dropout configurations: each setting of the other keys gets its own, and the
    # baselines are not compared with each other
    runs = pd.DataFrame({
        "group": ["off1", "p1", "off2", "p2"], "dropout.p": [0.0, 0.5, 0.0, 0.5],
        "optim.lr": [0.1, 0.1, 0.01, 0.01], "dropout_off": [True, False, True, False]})
    assert stats.pick_baselines(runs, ["off1", "p1", "off2", "p2"], ["dropout.p", "optim.lr"],
                                "dropout.p", None) == {"p1": "off1", "p2": "off2"}
    runs = pd.DataFrame({
        "group": ["a0", "a5", "b1", "b5"], "dropout.name": ["a", "a", "b", "b"],
        "dropout.p": [0.0, 0.5, 0.1, 0.5], "dropout_off": [True, False, False, False]})
    with pytest.raises(DropbenchError, match="matches 2 configurations"):
        stats.pick_baselines(runs, groups, by, "dropout.p", "dropout.p=0.5")
    with pytest.raises(DropbenchError, match="KEY=VALUE with KEY among"):
        stats.pick_baselines(runs, groups, by, "dropout.p", "optim.lr=1")


@pytest.fixture
def three_seed_sweep(tmp_path):
    root = tmp_path / "sweep"
    accs = {(0.0, 0): 0.90, (0.0, 1): 0.94, (0.0, 2): 0.92, (0.5, 0): 0.96, (0.5, 1): 0.98,
            (0.5, 2): 0.95, (0.25, 0): 0.91, (0.25, 1): 0.93}
    for i, ((p, seed), acc) in enumerate(accs.items()):
        make_run(root / str(i), p=p, seed=seed, test_acc=acc)
    return root


def test_report_tables_carry_the_comparisons(three_seed_sweep):
    out = write_report([three_seed_sweep])
    table = pd.read_csv(out / "summary.csv").set_index("dropout.p")
    assert pd.isna(table.loc[0.0, "p_value"])  # the baseline itself
    # p = 0.5 vs 0: same seeds 0, 1, 2 -> paired; the numbers of test_paired_test_... above
    assert table.loc[0.5, "paired"] and table.loc[0.5, "p_value"] == pytest.approx(0.0390,
                                                                                   abs=5e-4)
    # p = 0.25 (seeds 0, 1) vs 0 (seeds 0, 1, 2): Welch; means 0.92 and 0.92
    assert not table.loc[0.25, "paired"] and table.loc[0.25, "diff"] == pytest.approx(0.0)
    # Holm over the two comparisons: 2 * 0.0390 for the smaller p
    assert table.loc[0.5, "p_holm"] == pytest.approx(2 * table.loc[0.5, "p_value"])
    assert table.loc[0.5, "verdict"] == "within noise"
    md = (out / "summary.md").read_text()
    assert "## Against the baseline (acc)" in md
    assert "| p=0.5 | p=0 (no dropout) | 3 vs 3 | paired by seed | +4.33 |" in md
    assert "(n < 3: treat with caution)" in md
    page = (out / "report.html").read_text()
    assert "Against the baseline (acc)" in page and "paired by seed" in page


def test_report_baseline_option(three_seed_sweep):
    out = write_report([three_seed_sweep], baseline="dropout.p=0.5")
    table = pd.read_csv(out / "summary.csv").set_index("dropout.p")
    assert set(table["baseline"].dropna()) == {"dropout.p=0.5"}
    assert table.loc[0.0, "diff"] == pytest.approx(0.92 - 0.963333, abs=1e-6)


def test_unknown_baseline_is_a_one_line_refusal(three_seed_sweep):
    from conftest import run_cli

    result = run_cli("report", three_seed_sweep, "--baseline", "dropout.p=0.9",
                     cwd=three_seed_sweep.parent)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "dropbench: error: --baseline 'dropout.p=0.9' matches 0 configurations; choose one "
        "of: dropout.p=0 (no dropout); dropout.p=0.25; dropout.p=0.5"]
