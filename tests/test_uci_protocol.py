"""The UCI protocol sweep (+experiment=gal_uci with -m): selection by validation MC
log-likelihood, refit, protocol.csv and the summary, resume, and refusals."""

import csv
import json
import math

import pytest

from dropbench.sweep.protocol import choose, mean_se
from tests.data_files import write_uci

QUICK = ["trainer.epochs=3", "trainer.eval_every=3", "eval.mc_samples=50", "trainer.threads=1",
         "~hydra.callbacks.report"]


def test_choose_takes_the_highest_val_ll_the_first_on_a_tie_and_skips_failures():
    scores = [(0.005, 0.25, -2.0), (0.01, 0.25, None), (0.05, 0.25, -1.5), (0.1, 0.25, -1.5),
              (0.1, 0.5, math.nan)]
    assert choose(scores) == (0.05, 0.25, -1.5)
    assert choose([(0.1, 0.5, None), (0.1, 0.75, math.nan)]) is None


def test_mean_and_standard_error_follow_the_authors_summary():
    # yacht's reference MC RMSE, splits 0-3 of ../shared/data/uci: sd over n, then / sqrt(n)
    values = [0.885646995095317, 0.6057907960602585, 0.36680925031115097, 0.5]
    mean, se = mean_se(values)
    n = len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / n)
    assert mean == pytest.approx(sum(values) / n) and se == pytest.approx(sd / math.sqrt(n))


def protocol_run(cli, tmp_path, *extra):
    """The protocol on a small dataset of the real layout, with a 2 x 2 grid to keep it quick."""
    data = write_uci(tmp_path / "data", n_rows=60, test_size=12, n_splits=3)
    (data / "dropout_rates.txt").write_text("0.01\n0.1\n")
    (data / "tau_values.txt").write_text("0.5\n2.0\n")
    return cli("train", "-m", "+experiment=gal_uci", "dataset.name=yacht",
               f"data_dir={tmp_path / 'data'}", "hydra.sweep.dir=sweep", *QUICK, *extra)


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_the_protocol_selects_refits_and_writes_one_row_per_split(cli, tmp_path):
    r = protocol_run(cli, tmp_path, "protocol.splits=[0,2]")
    assert r.returncode == 0, r.stderr
    sweep = tmp_path / "sweep"
    rows = read_csv(sweep / "protocol.csv")
    assert [row["split"] for row in rows] == ["0", "2"]
    assert list(rows[0])[:6] == ["split", "p", "tau", "test_rmse", "test_mc_rmse", "test_ll"]
    for row in rows:
        k = int(row["split"])
        # the chosen pair is the selection job with the highest validation MC log-likelihood
        select = {}
        for path in (sweep / f"split{k:02d}" / "select").glob("*/summary.json"):
            s = json.loads(path.read_text())
            select[path.parent.name] = s["val_mc_ll"]
        assert len(select) == 4  # 2 rates x 2 taus
        best_dir = max(select.items(), key=lambda kv: kv[1])[0]
        assert best_dir == f"p={float(row['p'])},tau={float(row['tau'])}"
        assert float(row["val_ll"]) == pytest.approx(max(select.values()))
        refit = json.loads((sweep / row["run"] / "summary.json").read_text())
        assert row["run"] == f"split{k:02d}/refit" and refit["status"] == "completed"
        assert f"dataset.split={k}" in refit["overrides"]
        assert "dataset.validation=false" in refit["overrides"]
        assert float(row["test_mc_rmse"]) == pytest.approx(refit["test_mc_rmse"])
        assert float(row["test_ll"]) == pytest.approx(refit["test_mc_ll"])
    summary = json.loads((sweep / "protocol.json").read_text())
    assert summary["splits"] == [0, 2] and summary["completed"] == 2 and not summary["full"]
    text = (sweep / "protocol.md").read_text()
    assert "A QUICK LOOK, the protocol trains 4000" in text
    assert "2 of 2 splits completed (the dataset has 3)" in text
    assert "0.67 ± 0.05" in text  # the published yacht row


@pytest.mark.slow
def test_the_same_command_resumes_and_trains_nothing_twice(cli, tmp_path):
    assert protocol_run(cli, tmp_path, "protocol.splits=[1]").returncode == 0
    sweep = tmp_path / "sweep"
    before = {p: p.stat().st_mtime_ns for p in sweep.glob("split01/**/metrics.csv")}
    first = (sweep / "protocol.csv").read_text()
    r = protocol_run(cli, tmp_path, "protocol.splits=[1]")
    assert r.returncode == 0, r.stderr
    assert {p: p.stat().st_mtime_ns for p in sweep.glob("split01/**/metrics.csv")} == before
    assert (sweep / "protocol.csv").read_text() == first


@pytest.mark.parametrize("override, says", [
    ("dropout.p=0.1,0.2", "sweeps the splits and the (p, tau) grid itself"),
    ("dataset.split=1", "the UCI protocol sets dataset.split for each job"),
    ("protocol.splits=[0,7]", "protocol.splits=[0, 7]: yacht has splits 0..2"),
])
def test_overrides_the_protocol_owns_are_refused_in_one_line(cli, tmp_path, override, says):
    r = protocol_run(cli, tmp_path, override)
    assert r.returncode != 0 and says in r.stderr
    assert "Traceback" not in r.stderr
