"""Sweeps at scale: parallel launchers, failures that spare the other jobs, resumable sweeps."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from data_files import write_mnist

FAST = ["trainer.epochs=1", "model.hidden=[32]", "trainer.progress=false"]


def job_dirs(sweep: Path) -> list[Path]:
    """The sweep's job dirs, in the order of their names (the job's sorted overrides)."""
    return sorted(p.parent.parent for p in sweep.glob("*/.hydra/config.yaml"))


def status(job: Path) -> str:
    return json.loads((job / "summary.json").read_text())["status"]


def trainings_started(job: Path) -> int:
    """Each training that gets as far as building its model logs one 'model:' line."""
    return (job / "train.log").read_text().count("] - model: ")


def assert_complete(job: Path) -> None:
    for name in ("metrics.csv", "summary.json", "train.log", "checkpoints/best.pt",
                 ".hydra/config.yaml"):
        assert (job / name).is_file(), f"{job}/{name}"
    assert status(job) == "completed"


def test_joblib_runs_four_jobs_on_two_workers(cli, tmp_path):
    r = cli("train", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
            "dropout.p=0,0.5", "seed=0,1", *FAST, "hydra.sweep.dir=sweep")
    assert r.returncode == 0, r.stderr
    jobs = job_dirs(tmp_path / "sweep")
    assert len(jobs) == 4
    for job in jobs:
        assert_complete(job)
        # 2 workers share the cores: each job gets its half, never the whole machine
        assert json.loads((job / "summary.json").read_text())["threads"] == max(
            1, (os.cpu_count() or 1) // 2)


def test_failed_job_spares_the_others_and_resume_finishes_only_it(cli, tmp_path):
    sweep_args = ["train", "-m", "dataset=digits,mnist", "dataset.download=false",
                  "dataset.val_size=20", *FAST, "hydra.sweep.dir=sweep"]
    first = cli(*sweep_args)
    assert first.returncode == 2 and "MNIST is not in" in first.stderr  # no MNIST files yet
    digits, mnist = job_dirs(tmp_path / "sweep")
    assert status(digits) == "completed" and status(mnist) == "failed"
    finished = (digits / "metrics.csv").read_bytes()

    write_mnist(tmp_path / "data")  # the missing files arrive; resume the same sweep
    again = cli(*sweep_args, "trainer.resume=true")
    assert again.returncode == 0, again.stderr
    assert status(digits) == "completed" and status(mnist) == "completed"
    assert trainings_started(digits) == 1, "a completed job must not run again"
    assert trainings_started(mnist) == 1
    assert (digits / "metrics.csv").read_bytes() == finished


def test_sweeps_started_together_get_their_own_dirs(tmp_path):
    env = {**os.environ, "DROPBENCH_DATA": str(tmp_path / "data")}
    cmd = [sys.executable, "-m", "dropbench.cli", "train", "-m", "seed=0", "trainer.epochs=1",
           "dataset.train_subset=50", "trainer.progress=false"]
    procs = [subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE) for _ in range(2)]
    assert all(p.wait(timeout=300) == 0 for p in procs)
    sweeps = [p for p in (tmp_path / "multirun").glob("*/*") if p.is_dir()]
    assert len(sweeps) == 2, sweeps
    for sweep in sweeps:
        assert status(job_dirs(sweep)[0]) == "completed"


@pytest.mark.slow
def test_submitit_local_runs_the_sweep(cli, tmp_path):
    r = cli("train", "-m", "hydra/launcher=submitit_local", "hydra.launcher.cpus_per_task=1",
            "dropout.p=0,0.5", *FAST, "hydra.sweep.dir=sweep")
    assert r.returncode == 0, r.stderr
    jobs = job_dirs(tmp_path / "sweep")
    assert len(jobs) == 2
    for job in jobs:
        assert_complete(job)


@pytest.mark.slow
def test_optuna_preset_searches_rates(cli, tmp_path):
    r = cli("train", "-m", "hydra/sweeper=dropout_search", "hydra.sweeper.n_trials=3", *FAST,
            "hydra.sweep.dir=sweep")
    assert r.returncode == 0, r.stderr
    results = (tmp_path / "sweep" / "optimization_results.yaml").read_text()
    assert "dropout.p" in results and "best_value" in results
    best = max(json.loads((j / "summary.json").read_text())["best_val_acc"]
               for j in job_dirs(tmp_path / "sweep"))
    assert f"best_value: {best}" in results
