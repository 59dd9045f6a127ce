"""The benchmark harness on a tiny case: JSON structure, and ratios computed from the rows'
measured seconds. No timing assertions: speed claims live in docs/benchmarks.md."""

import json
import sys

import pytest
import torch

from dropbench.bench import main
from dropbench.bench.harness import Ratio, Row, run_timed
from dropbench.dropout import SCHEMES


def test_rates_and_ratios_come_from_the_medians():
    slow = Row("c", "slow", "samples", 100, seconds=[4.0, 1.0, 2.0])  # median 2 s -> 50/s
    fast = Row("c", "fast", "samples", 300, seconds=[1.0, 2.0, 3.0, 5.0])  # median 2.5 -> 120/s
    rows = {r.key: r for r in (slow, fast)}
    assert slow.rate == 50 and fast.rate == 120
    speedup = Ratio("fast / slow", "c/fast", "c/slow", ">=", 2.5).compute(rows)
    assert speedup.value == pytest.approx(2.4) and speedup.met is False
    overhead = Ratio("slow time / fast time", "c/fast", "c/slow", "<=", 2.5).compute(rows)
    assert overhead.met is True
    info = Ratio("no target", "c/slow", "c/fast", None, None).compute(rows)
    assert info.value == pytest.approx(50 / 120) and info.met is None
    assert Ratio("gone", "c/fast", "c/missing", ">=", 1).compute(rows).value is None


def bench_doc(tmp_path, *args) -> dict:
    """`dropbench bench ARGS --threads 1` in this process, as the JSON document it writes."""
    out = tmp_path / "bench.json"
    threads = torch.get_num_threads()
    try:
        main([*args, "--threads", "1", "--out", str(out)])
    finally:
        torch.set_num_threads(threads)  # --threads changes the whole test process
    return json.loads(out.read_text())


def test_tiny_bench_run_writes_consistent_json(tmp_path, capsys):
    doc = bench_doc(tmp_path, "--cases", "mlp", "schemes", "--scale", "0.002", "--reps", "2",
                    "--warmup", "1")
    assert {"machine", "settings", "rows", "ratios", "wall_s"} <= set(doc)
    assert doc["machine"]["threads"] == 1 and doc["settings"]["reps"] == 2
    rows = {f"{r['case']}/{r['name']}": r for r in doc["rows"]}
    measured = [r for r in rows.values() if r["available"]]
    assert {r["case"] for r in measured} == {"mlp", "schemes"}
    for r in measured:
        assert len(r["seconds"]) == 2 and r["work"] > 0 and r["peak_rss_mb"] > 0
        assert r["min_s"] <= r["median_s"] <= r["max_s"]
        assert r["rate"] == pytest.approx(r["work"] / r["median_s"])
    for r in rows.values():
        if not r["available"]:  # a scheme this checkout lacks is reported, not skipped silently
            assert r["note"].startswith("not available") and r["seconds"] == []
    assert ("schemes/classic" in rows) and rows["schemes/classic"]["available"] == (
        "classic" in SCHEMES)
    for ratio in doc["ratios"]:
        num, den = rows[ratio["numerator"]], rows[ratio["denominator"]]
        if num["available"] and den["available"]:
            assert ratio["value"] == pytest.approx(num["rate"] / den["rate"])
        else:
            assert ratio["value"] is None
    labels = [r["label"] for r in doc["ratios"]]
    assert "MLP: dropbench speed / examples-style reference" in labels
    printed = capsys.readouterr().out
    assert "dropbench trainer" in printed and "wrote" in printed


def test_cli_subcommand(cli):
    result = cli("bench", "--help")
    assert result.returncode == 0, result.stderr
    assert "--cases" in result.stdout and "--device" in result.stdout
    # the whole description, cases included: every case the option accepts is explained
    from dropbench.bench import CASES

    described = {line.split()[0] for line in result.stdout.splitlines()
                 if line.startswith("  ") and not line.strip().startswith("-")}
    assert set(CASES) <= described


@pytest.mark.slow
def test_sweep_case_times_both_launchers_and_the_training_alone(tmp_path):
    """The sweep case runs the 12-job sweep through both launchers (as subprocesses) and the
    training epochs in this process, and checks the launchers' results agree."""
    doc = bench_doc(tmp_path, "--cases", "sweep", "--scale", "0.01", "--reps", "1", "--warmup",
                    "0")
    names = {r["name"] for r in doc["rows"] if r["available"] and len(r["seconds"]) == 1}
    assert {"12 jobs, batched launcher", "12 jobs, basic launcher",
            "training only: 12 members stacked, one process",
            "training only: 12 trainer epochs one after another"} <= names
    ratios = {r["label"]: r for r in doc["ratios"]}
    agree = {c["label"]: c for c in doc["checks"]}[
        "sweep: largest difference in best val loss, batched vs basic"]
    assert agree["value"] is not None and agree["met"] is True
    assert ratios["sweep: training only, stacked speed / one after another"]["value"] > 0


def test_members_case_times_each_stack_size_both_ways(tmp_path):
    from dropbench.bench.common import Settings
    from dropbench.bench.members import SIZES, member_configs

    cfgs = member_configs(Settings(torch.device("cpu"), tmp_path), 6, 64)
    assert [c.seed for c in cfgs] == list(range(6))
    assert [c.dropout.p for c in cfgs] == [0, 0.25, 0.5, 0.75, 0, 0.25]  # copies, not one
    assert all(c.model.hidden == [50] and c.dataset.train_subset == 64 for c in cfgs)

    doc = bench_doc(tmp_path, "--cases", "members", "--scale", "0.01", "--reps", "1",
                    "--warmup", "0")
    rows = {r["name"]: r for r in doc["rows"]}
    for size in SIZES:
        stacked, alone = rows[f"{size} members stacked"], rows[f"{size} members one after another"]
        assert stacked["work"] == alone["work"] == size * 64  # the digits subset, per member
        assert len(stacked["seconds"]) == len(alone["seconds"]) == 1
    ratios = {r["label"]: r["value"] for r in doc["ratios"]}
    assert all(ratios[f"members: {size} stacked, speed / one after another"] > 0
               for size in SIZES)


def test_uci_case_says_what_it_lacks_without_the_yacht_data(tmp_path):
    out = tmp_path / "bench.json"
    main(["--cases", "uci", "--data-dir", str(tmp_path / "none"), "--out", str(out)])
    rows = json.loads(out.read_text())["rows"]
    assert rows and all(not r["available"] for r in rows)
    assert all("dropbench data download uci" in r["note"] for r in rows)


@pytest.mark.parametrize("validation", [True, False])
def test_uci_case_counts_the_random_words_a_protocol_training_draws(compose, tmp_path,
                                                                    monkeypatch, validation):
    """The floor row's count: a lone selection training (and a refit) of the protocol, on a
    small yacht-shaped folder, draws exactly as many words for its dropout factors (training
    batches and final MC passes) as `training_words` says."""
    import dropbench.dropout.standard as standard
    from dropbench.bench.uci import training_words
    from dropbench.engine import train
    from tests.data_files import write_uci

    folder = write_uci(tmp_path / "data", n_rows=60, test_size=12, n_splits=2)
    drawn = []
    keep_factors = standard.keep_factors

    def counted(shape, *args, **kwargs):
        drawn.append((torch.Size(shape).numel() + 1) // 2)  # keep_factors' one draw
        return keep_factors(shape, *args, **kwargs)

    monkeypatch.setattr(standard, "keep_factors", counted)
    cfg = compose(["+experiment=gal_uci", "dataset.name=yacht", f"data_dir={tmp_path / 'data'}",
                   "dataset.split=1", f"dataset.validation={str(validation).lower()}",
                   "trainer.epochs=3", "trainer.batch_size=16", "model.hidden=[8]",
                   "eval.mc_samples=7000", "trainer.threads=1"])
    train(cfg, tmp_path / "run")
    assert sum(drawn) == training_words(folder, 1, validation, 3, 8, passes=7000, batch_size=16)


@pytest.mark.slow
def test_uci_case_times_the_protocol_three_ways(tmp_path):
    """On a small yacht-shaped folder: both launchers (child processes), the plain loop, the
    largest stack's peak RSS, and the two launchers' choices compared split by split."""
    from tests.data_files import write_uci

    write_uci(tmp_path / "data", n_rows=60, test_size=12, n_splits=2)
    doc = bench_doc(tmp_path, "--cases", "uci", "--data-dir", str(tmp_path / "data"),
                    "--scale", "0.005", "--reps", "1")
    timed = {r["name"]: r for r in doc["rows"] if r["available"]}
    assert len(timed) == 6 and all(len(r["seconds"]) == 1 for r in timed.values())
    assert all(timed[name]["peak_rss_mb"] > 100 for name in timed if "launcher" in name
               or "largest" in name)
    ratios = {r["label"]: r["value"] for r in doc["ratios"]}
    assert ratios["uci: batched launcher speed / basic launcher"] > 0
    agree = [c for c in doc["checks"] if c["label"].startswith("uci: splits where")]
    assert agree[0]["value"] == 0 and agree[0]["met"] is True


def test_a_commands_peak_rss_is_its_own_not_this_processs(tmp_path):
    """Linux starts an exec'd child's peak RSS at its parent's: run_timed must report a small
    command as small while this process is large, and a large one as large."""
    ballast = b"x" * 400_000_000  # touched: this process's RSS is now over 400 MB
    small = run_timed([sys.executable, "-c", "print(1)"], tmp_path)
    large = run_timed([sys.executable, "-c", "b = b'x' * 300_000_000"], tmp_path)
    assert len(ballast) and small.peak_rss_mb < 100 and large.peak_rss_mb > 250  # MiB: 286 of them
    assert small.wall > 0 and large.cpu > 0
