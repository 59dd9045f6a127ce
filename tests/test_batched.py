"""hydra/launcher=batched: jobs of a sweep trained as one stacked model, each member in its own
run dir, with the results of the same job run alone."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dropbench.sweep.plan import plan

TINY = ["model.hidden=[32]", "trainer.progress=false", "~hydra.callbacks.report"]
# Two seeds x dropout on/off, on 100 digits so that early stopping ends members at different
# epochs: every path a member can take through the stack.
SWEEP = ["dropout.p=0,0.5", "seed=0,1", "optim.lr=0.3", "dataset.train_subset=100",
         "trainer.epochs=10", "trainer.patience=2", *TINY]


def jobs(sweep: Path) -> dict[tuple, Path]:
    """The sweep's job dirs by their overrides (whatever the dirs are named)."""
    return {tuple(sorted(json.loads(p.read_text())["overrides"])): p.parent
            for p in sweep.glob("*/summary.json")}


def summaries(sweep: Path) -> list[dict]:
    """Every job's summary.json, in the order of their sorted overrides."""
    return [json.loads((job / "summary.json").read_text())
            for _, job in sorted(jobs(sweep).items())]


def metrics(run: Path) -> list[dict]:
    with open(run / "metrics.csv") as f:
        return [{k: float(v) for k, v in row.items() if k != "seconds"}
                for row in csv.DictReader(f)]


def weights(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.pt", weights_only=False)["model"]


def test_plan_batches_compatible_jobs_and_says_why_not_the_others(compose):
    jobs = [compose(o) for o in (["seed=0"], ["seed=1", "dropout.p=0.2", "optim.lr=0.1"],
                                 ["model=lenet"], ["optim=ntasgd"], ["seed=2"],
                                 ["model.hidden=[64]"])]
    units = plan(jobs, max_batch=2)
    assert [u.jobs for u in units] == [[0, 1], [2], [3], [4], [5]]
    assert "no other job" in units[1].alone_because  # lenet stacks, but alone in the sweep
    assert "optim.name=ntasgd is not batched" in units[2].alone_because
    assert "no other job" in units[3].alone_because  # its batch was full (max_batch=2)
    assert "no other job" in units[4].alone_because  # another architecture
    assert plan(jobs[:2], max_batch=1)[0].alone_because is not None


def test_batched_sweep_matches_the_same_jobs_run_alone(cli, tmp_path):
    batched = cli("train", "-m", "hydra/launcher=batched", *SWEEP, "hydra.sweep.dir=batched")
    assert batched.returncode == 0, batched.stderr
    assert "4 in 1 stacked batch," in batched.stdout + batched.stderr
    alone = cli("train", "-m", *SWEEP, "hydra.sweep.dir=alone")
    assert alone.returncode == 0, alone.stderr
    epochs_run = set()
    batched_jobs, alone_jobs = jobs(tmp_path / "batched"), jobs(tmp_path / "alone")
    assert len(batched_jobs) == 4 and batched_jobs.keys() == alone_jobs.keys()
    for key, run_b in batched_jobs.items():
        run_a = alone_jobs[key]
        b, a = (json.loads((r / "summary.json").read_text()) for r in (run_b, run_a))
        assert b["status"] == a["status"] == "completed"
        assert b["batched_members"] == 4  # trained in the stack, not alone after all
        assert b["epochs_run"] == a["epochs_run"] and b["best_epoch"] == a["best_epoch"]
        assert b["test_acc"] == pytest.approx(a["test_acc"], abs=0.01)
        epochs_run.add(b["epochs_run"])
        for row_b, row_a in zip(metrics(run_b), metrics(run_a), strict=True):
            assert row_b == pytest.approx(row_a, rel=1e-4, abs=1e-4)
        for name, w in weights(run_a).items():  # same seed: same init, data order and masks
            torch.testing.assert_close(weights(run_b)[name], w, rtol=1e-4, atol=1e-4)
        assert (run_b / ".hydra" / "overrides.yaml").is_file()
        assert "] - epoch 1/10" in (run_b / "train.log").read_text()
    assert len(epochs_run) > 1, "members should stop at different epochs"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cuda_sweep_trains_stacked(cli, tmp_path):
    """On CUDA the members draw from CUDA generators, the trial step's throwaway ones too:
    the batch stacks instead of falling back to running each member alone."""
    r = cli("train", "-m", "hydra/launcher=batched", *SWEEP, "device=cuda",
            "hydra.sweep.dir=gpu")
    assert r.returncode == 0, r.stderr
    assert "4 in 1 stacked batch," in r.stdout + r.stderr
    assert [s["batched_members"] for s in summaries(tmp_path / "gpu")] == [4] * 4


def test_batched_sweep_resumes_and_reports(cli, tmp_path):
    args = ["train", "-m", "hydra/launcher=batched", "dropout.p=0,0.5", *TINY,
            "hydra.sweep.dir=sweep"]
    first = cli(*args, "trainer.epochs=1")
    assert first.returncode == 0, first.stderr
    longer = cli(*args, "trainer.epochs=2", "trainer.resume=true")
    assert longer.returncode == 0, longer.stderr
    straight = cli("train", "-m", "dropout.p=0,0.5", *TINY, "trainer.epochs=2",
                   "hydra.sweep.dir=straight")
    assert straight.returncode == 0, straight.stderr
    resumed_jobs, straight_jobs = jobs(tmp_path / "sweep"), jobs(tmp_path / "straight")
    assert len(resumed_jobs) == 2
    for key, resumed in resumed_jobs.items():  # the same jobs: the epochs override differs
        p = next(o for o in key if o.startswith("dropout.p="))
        alone = next(d for k, d in straight_jobs.items() if p in k)
        assert [r["epoch"] for r in metrics(resumed)] == [1, 2]
        for row_r, row_a in zip(metrics(resumed), metrics(alone), strict=True):
            assert row_r == pytest.approx(row_a, rel=1e-4, abs=1e-4)
    report = cli("report", tmp_path / "sweep")
    assert report.returncode == 0, report.stderr
    assert (tmp_path / "sweep" / "report" / "report.html").is_file()


def test_jobs_that_cannot_be_batched_run_alone_with_a_note(cli, tmp_path):
    r = cli("train", "-m", "hydra/launcher=batched", "optim=sgd,ntasgd", "trainer.epochs=1",
            *TINY, "hydra.sweep.dir=sweep")
    assert r.returncode == 0, r.stderr
    out = r.stdout + r.stderr
    assert "alone: optim.name=ntasgd is not batched (batched: sgd, adam, adamw)" in out
    assert "alone: no other job" in out  # the sgd job had nobody to share a stack with
    assert [s["status"] for s in summaries(tmp_path / "sweep")] == ["completed"] * 2


def test_every_job_lands_in_the_one_default_sweep_dir(cli, tmp_path):
    # the default sweep dir holds `${now:...}` down to microseconds: each job config must share
    # the sweep's one resolved time, also when the configs were composed ahead for validation
    r = cli("train", "-m", "hydra/launcher=batched", "dropout.p=0,0.5", "seed=0,1",
            "trainer.epochs=1", *TINY)
    assert r.returncode == 0, r.stderr
    sweeps = [p.parent.parent for p in (tmp_path / "multirun").glob("*/*/*/summary.json")]
    assert len(sweeps) == 4 and len(set(sweeps)) == 1, sweeps


def test_a_batch_trains_with_one_thread_count_and_records_it(tmp_path):
    """The members of a batch train in one stack, so with one thread count: the first job's
    choice. Every member's summary.json and manifest.json record that count, even when the
    machine's load would have given later members another (faked here: 2, 1, 2, 1)."""
    fake = ("import itertools, sys; import dropbench.engine.accel as accel; "
            "counts = itertools.cycle([2, 1]); accel.default_threads = lambda: next(counts); "
            "import dropbench.engine, dropbench.sweep.batch as batch; "
            "dropbench.engine.default_threads = batch.default_threads = accel.default_threads; "
            "from dropbench.cli import main; sys.argv[0] = 'dropbench'; main()")
    env = {**os.environ, "DROPBENCH_DATA": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1"}
    r = subprocess.run([sys.executable, "-c", fake, "train", "-m", "hydra/launcher=batched",
                        "dropout.p=0,0.5", "seed=0,1", "trainer.epochs=1", *TINY,
                        "hydra.sweep.dir=s"], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    runs = list(jobs(tmp_path / "s").values())
    assert len(runs) == 4
    for run in runs:
        summary = json.loads((run / "summary.json").read_text())
        manifest = json.loads((run / "manifest.json").read_text())
        assert summary["batched_members"] == 4
        assert summary["process"]["threads"] == 2
        assert [s["threads"] for s in manifest["sessions"]] == [2]


def test_max_batch_must_be_positive(cli):
    r = cli("train", "-m", "hydra/launcher=batched", "hydra.launcher.max_batch=0",
            "trainer.epochs=1", *TINY)
    assert r.returncode == 2 and "max_batch=0 must be >= 1" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_batched_members_have_the_distribution_of_lone_runs_over_seeds(cli, tmp_path):
    """Over 6 seeds at dropout 0.5, the batched members' validation accuracies have the mean
    of the lone runs' within 0.005 (each seed's run within 0.002: same masks, same order)."""
    seeds = "seed=" + ",".join(map(str, range(6)))
    for launcher in ("batched", "basic"):
        r = cli("train", "-m", f"hydra/launcher={launcher}", seeds, "dropout.p=0.5",
                "trainer.epochs=3", *TINY, f"hydra.sweep.dir={launcher}")
        assert r.returncode == 0, r.stderr
    batched = [s["best_val_acc"] for s in summaries(tmp_path / "batched")]
    alone = [s["best_val_acc"] for s in summaries(tmp_path / "basic")]
    assert len(batched) == len(alone) == 6
    assert abs(sum(batched) / 6 - sum(alone) / 6) < 0.005
    assert max(abs(b - a) for b, a in zip(batched, alone, strict=True)) < 0.002


def test_the_launcher_takes_the_configs_the_sweeper_validated():
    """Each job's config is composed once: by the sweeper's validation, then handed over;
    a job nobody validated is composed when the launcher asks."""
    from types import SimpleNamespace

    from dropbench.sweep.launcher import ValidatedConfigs

    calls = []

    def compose(master_config, sweep_overrides):
        calls.append(tuple(sweep_overrides))
        return {"overrides": list(sweep_overrides), "call": len(calls)}

    loader = SimpleNamespace(load_sweep_config=compose)
    validated = ValidatedConfigs(loader)
    master = object()
    for job in (["seed=0"], ["seed=1"]):  # as Sweeper.validate_batch_is_legal calls it
        loader.load_sweep_config(master_config=master, sweep_overrides=list(job))
    assert validated.take(master, ("seed=1",)) == {"overrides": ["seed=1"], "call": 2}
    assert validated.take(master, ("seed=0",))["call"] == 1
    assert validated.take(master, ("seed=2",))["call"] == 3  # not validated: composed now
    assert validated.take(master, ("seed=0",))["call"] == 4  # handed over once only
    assert calls == [("seed=0",), ("seed=1",), ("seed=2",), ("seed=0",)]
