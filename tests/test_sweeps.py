"""Sweeps at scale: parallel launchers, failures that spare the other jobs, resumable sweeps."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

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


# --- a sweep job is what it trains ---------------------------------------------------------------
SWEEP = ["dropout.p=0,0.5", "seed=0,1", "trainer.epochs=2", "model.hidden=[16]",
         "hydra.sweep.dir=sweep"]
# Every key a resume may change (rundir.RESUME_MAY_CHANGE), changed; trainer.overwrite=true
# would start the jobs over, so it is given as it was, with a ++ prefix.
RESUME_ONLY = ["trainer.resume=true", "trainer.threads=2", "trainer.progress=true", "device=cpu",
               "logger=[csv,tensorboard]", "data_dir=elsewhere", "trainer.epochs=1",
               "++trainer.overwrite=false"]


@pytest.mark.slow
def test_resume_with_every_resume_only_key_changed_trains_nothing_new(cli, tmp_path):
    first = cli("train", "-m", *SWEEP, "trainer.threads=1", "trainer.progress=false",
                "~hydra.callbacks.report")
    assert first.returncode == 0, first.stderr
    sweep = tmp_path / "sweep"
    jobs = job_dirs(sweep)
    assert [j.name for j in jobs] == [f"dropout.p={p},model.hidden=[16],seed={seed}"
                                      for p in ("0", "0.5") for seed in (0, 1)]
    log = (jobs[0] / "train.log").read_text()  # accuracy in percent, as status shows it
    assert re.search(r"epoch 2/2  train loss \d\.\d{4} acc \d+\.\d\d %  train_eval loss .* "
                     r"val loss \d\.\d{4} acc \d+\.\d\d %", log)
    assert re.search(r"test acc \d+\.\d\d %", log)
    # a dir named as an earlier dropbench named it (with the threads it ran with) is found too
    legacy = jobs[0].rename(sweep / f"{jobs[0].name},trainer.threads=1")
    jobs = job_dirs(sweep)
    metrics = {job: (job / "metrics.csv").read_bytes() for job in jobs}

    again = cli("train", "-m", *SWEEP, *RESUME_ONLY)
    assert again.returncode == 0, again.stderr
    assert job_dirs(sweep) == jobs, "a resume-only key must not make a new job dir"
    assert legacy in jobs
    for job in jobs:
        assert trainings_started(job) == 1 and (job / "metrics.csv").read_bytes() == metrics[job]
    progress = [ln for ln in again.stdout.splitlines() if ln.startswith("job ")]
    assert [ln.split(" | ")[1] for ln in progress] == ["4/4 done (completed 4)"] * 4
    summary = (sweep / "report" / "summary.csv").read_text().splitlines()
    header = summary[0].split(",")
    assert [row.split(",")[header.index("n")] for row in summary[1:]] == ["2", "2"]  # 2 seeds
    status = cli("status", "sweep", "--watch", "1")  # nothing pending: one table, exit 0
    assert status.returncode == 0, status.stderr
    assert "pending" not in status.stdout
    assert status.stdout.splitlines()[-1] == "4/4 done (completed 4)"


def test_job_dir_names_leave_out_resume_only_keys_and_stay_readable(tmp_path):
    from dropbench.jobdir import job_dir_name

    name = job_dir_name(["seed=1", "dropout.p=0.5"])
    assert name == "dropout.p=0.5,seed=1"
    assert job_dir_name(["dropout.p=0.5", "seed=1", *RESUME_ONLY, "+trainer.threads=3",
                         "~device", "+logger/tensorboard=tensorboard"]) == name
    # a path: its last component and a hash of the whole value; another path, another hash
    corpus = job_dir_name(["dataset=textdir", "dataset.path=/data/my corpus/x"])
    assert re.fullmatch(r"dataset\.path=x-[0-9a-f]{8},dataset=textdir", corpus)
    assert corpus == job_dir_name(["dataset.path=/data/my\\ corpus/x", "dataset=textdir"])
    assert corpus == job_dir_name(["dataset.path='/data/my corpus/x'", "dataset=textdir"])
    assert corpus != job_dir_name(["dataset=textdir", "dataset.path=/data/other/x"])
    assert re.fullmatch(r"\+note=it_is_mine-[0-9a-f]{8}", job_dir_name(["+note='it is: mine'"]))
    long = job_dir_name([f"+x{i}=1" for i in range(40)])
    assert len(long) <= 120 and long.startswith("+x0=1,+x10=1,")
    assert re.search(r"-[0-9a-f]{16}$", long)
    assert long != job_dir_name([f"+x{i}=1" for i in range(41)])
    assert job_dir_name(["trainer.resume=true"]) == "defaults"


def test_job_dir_of_an_earlier_naming_is_found_by_its_overrides(tmp_path):
    from dropbench.jobdir import job_dir_name

    sweep = tmp_path / "sweep"
    for name, status in (("job-0123456789abcdef", "completed"),
                         ("dropout.p=0,trainer.threads=1", "interrupted"),
                         ("dropout.p=0,trainer.threads=2", "completed")):
        (sweep / name / ".hydra").mkdir(parents=True)
        overrides = ["dataset.path=/d/x"] if name.startswith("job-") else [
            "dropout.p=0", name.rsplit(",", 1)[1]]
        (sweep / name / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
        (sweep / name / "summary.json").write_text(json.dumps({"status": status}))
    assert job_dir_name(["dataset.path=/d/x", "trainer.threads=4"], sweep) == \
        "job-0123456789abcdef"
    # two dirs of one job: the completed one
    assert job_dir_name(["dropout.p=0", "trainer.threads=4"], sweep) == \
        "dropout.p=0,trainer.threads=2"
    assert job_dir_name(["dropout.p=0.5"], sweep) == "dropout.p=0.5"  # a new job
