"""Faults around a run dir, through the real CLI: every job ends with a true summary and one
error line, nothing dropbench did not write is deleted, dead jobs are shown as such, and
records of a newer format are refused by every reader."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from dropbench import rundir

TINY = ["model.hidden=[16]", "trainer.progress=false", "trainer.threads=1"]


def one_error_line(r, code=2) -> str:
    lines = r.stderr.strip().splitlines()
    assert r.returncode == code, r.stderr
    assert len(lines) == 1 and lines[0].startswith("dropbench: error: "), r.stderr
    return lines[0]


def summary(run: Path) -> dict:
    return json.loads((run / rundir.SUMMARY).read_text())


def snapshot(run: Path) -> dict:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*"))
            if p.is_file()}


def patched_cli(tmp_path: Path, patch: str, *args, popen=False, env=None):
    """`dropbench ARGS` in a subprocess after `patch` (Python source) ran in it: a fault
    injected where no input can cause one."""
    code = textwrap.dedent(patch) + "\nfrom dropbench.cli import main\nmain(sys.argv[1:])\n"
    user_env = env or {}
    env = {**os.environ, "DROPBENCH_DATA": str(tmp_path / "data"), "OMP_NUM_THREADS": "1",
           "PYTHONUNBUFFERED": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    env.update(user_env)
    command = [sys.executable, "-c", "import sys\n" + code, *map(str, args)]
    if popen:
        return subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)


# Training that raises an error no config value can cause: a stand-in for a bug.
BUG = """
import dropbench.engine.trainer as trainer
def train_epoch(self):
    if self.cfg.seed == 1:
        raise ZeroDivisionError("injected fault")
    return TRAIN_EPOCH(self)
TRAIN_EPOCH = trainer.Run.train_epoch
trainer.Run.train_epoch = train_epoch
"""

# A first epoch that lasts until the process is killed.
ENDLESS_FIRST_EPOCH = """
import time
import dropbench.engine.trainer as trainer
trainer.Run.train_epoch = lambda self: time.sleep(3600)
"""


def wait_for(path: Path, timeout=120) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.05)


# --- every job ends with a true summary ---------------------------------------------------
def test_an_unexpected_error_is_a_failed_summary_and_one_line(tmp_path):
    r = patched_cli(tmp_path, BUG, "train", *TINY, "seed=1", "hydra.run.dir=run")
    line = one_error_line(r, code=1)
    assert "unexpected error (ZeroDivisionError: injected fault)" in line and "--debug" in line
    record = summary(tmp_path / "run")
    assert record["status"] == "failed" and record["error"] == "injected fault"
    assert record["error_type"] == "ZeroDivisionError"
    # the traceback, when asked for
    for extra_args, env in ((["--debug"], {}), ([], {"HYDRA_FULL_ERROR": "1"})):
        r = patched_cli(tmp_path, BUG, *extra_args, "train", *TINY, "seed=1",
                        "hydra.run.dir=again", "trainer.overwrite=true", env=env)
        assert r.returncode != 0 and "Traceback" in r.stderr, (extra_args, r.stderr)


def test_a_sweep_records_each_failed_job_and_goes_on(tmp_path):
    r = patched_cli(tmp_path, BUG, "train", "-m", *TINY, "trainer.epochs=1", "seed=0,1,2",
                    "hydra.sweep.dir=sweep", "~hydra.callbacks.report")
    line = r.stderr.strip().splitlines()[-1]
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "job " in line and "seed=1" in line and "injected fault" in line, line
    jobs = {seed: next((tmp_path / "sweep").glob(f"*seed={seed}*")) for seed in (0, 1, 2)}
    statuses = {seed: summary(job)["status"] for seed, job in jobs.items()}
    assert statuses == {0: "completed", 1: "failed", 2: "completed"}


def test_a_fault_in_a_batched_sweep_fails_each_member(tmp_path):
    stacked_bug = """
import dropbench.sweep.batch as batch
def train_epoch(*args, **kwargs):
    raise ZeroDivisionError("injected fault")
batch.train_epoch = train_epoch
"""
    r = patched_cli(tmp_path, stacked_bug, "train", "-m", "hydra/launcher=batched", *TINY,
                    "trainer.epochs=1", "seed=0,1", "hydra.sweep.dir=sweep",
                    "~hydra.callbacks.report")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "injected fault" in r.stderr.strip().splitlines()[-1]
    jobs = sorted((tmp_path / "sweep").glob("*seed=*"))
    assert len(jobs) == 2
    for job in jobs:
        assert summary(job)["status"] == "failed" and summary(job)["error"] == "injected fault"


def test_train_ends_by_printing_its_run_dir(cli, tmp_path):
    r = cli("train", *TINY, "trainer.epochs=1", "hydra.run.dir=run")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == f"run dir: {tmp_path / 'run'}"


# --- dead jobs ----------------------------------------------------------------------------
def status_of(cli, run: Path) -> str:
    r = cli("status", run)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_a_job_killed_in_its_first_epoch_is_shown_killed_and_starts_over(cli, tmp_path):
    proc = patched_cli(tmp_path, ENDLESS_FIRST_EPOCH, "train", *TINY, "hydra.run.dir=run",
                       popen=True)
    try:
        wait_for(tmp_path / "run" / rundir.SUMMARY)
        assert "killed?" not in status_of(cli, tmp_path / "run")  # alive: its lock is held
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    shown = status_of(cli, tmp_path / "run")
    assert "running" in shown and f"process {proc.pid} is gone: killed?" in shown
    # nothing was trained, so a resume starts over, with the config given now
    r = cli("train", *TINY, "trainer.epochs=1", "dropout.p=0.2", "trainer.resume=true",
            "hydra.run.dir=run")
    assert r.returncode == 0, r.stderr
    assert summary(tmp_path / "run")["status"] == "completed"


def test_a_job_on_another_host_is_judged_by_its_heartbeat(tmp_path):
    from dropbench.status import liveness

    run = tmp_path / "run"
    run.mkdir()
    (run / rundir.LOCK).write_text(json.dumps({"host": f"not-{socket.gethostname()}",
                                               "pid": 1, "since": "..."}))
    beat = (run / rundir.LOCK).stat().st_mtime
    assert liveness(run, now=beat + 2 * rundir.HEARTBEAT_S) is None
    assert "no heartbeat" in liveness(run, now=beat + 4 * rundir.HEARTBEAT_S)


def test_status_names_a_binary_metrics_file(cli, tmp_path):
    assert cli("train", *TINY, "trainer.epochs=1", "hydra.run.dir=run").returncode == 0
    (tmp_path / "run" / rundir.METRICS).write_bytes(bytes(range(256)) * 4)
    shown = status_of(cli, tmp_path / "run")
    assert "metrics.csv is unreadable" in shown and "Traceback" not in shown


def test_status_shows_damaged_files_as_unreadable(tmp_path):
    from dropbench.status import render, sweep_jobs

    damage = {"binary": {rundir.SUMMARY: bytes(range(256)), rundir.CONFIG: b"\xff\xfe"},
              "list": {rundir.SUMMARY: b"[1, 2]", rundir.OVERRIDES: b"7"},
              "types": {rundir.SUMMARY: json.dumps({"status": "running", "metric": "acc",
                                                    "wall_s": "soon"}).encode()}}
    for name, files in damage.items():
        for file, data in files.items():
            (tmp_path / name / file).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name / file).write_bytes(data)
    jobs, total = sweep_jobs(tmp_path)
    assert {j.name: j.status for j in jobs} == dict.fromkeys(damage, "unreadable")
    assert all(j.note for j in jobs) and "unreadable" in render(jobs, total)


# --- nothing of the user's destroyed ------------------------------------------------------
def test_resume_and_overwrite_together_are_refused(cli, tmp_path):
    assert cli("train", *TINY, "trainer.epochs=1", "hydra.run.dir=run").returncode == 0
    before = snapshot(tmp_path / "run")
    r = cli("train", *TINY, "trainer.epochs=1", "trainer.resume=true", "trainer.overwrite=true",
            "hydra.run.dir=run")
    assert "pass only one of them" in one_error_line(r)
    assert snapshot(tmp_path / "run") == before


@pytest.mark.slow
def test_a_foreign_dir_is_never_a_run_nor_deleted(cli, tmp_path):
    foreign = tmp_path / "project"
    (foreign / "checkpoints").mkdir(parents=True)
    (foreign / "checkpoints" / "last.pt").write_bytes(b"someone else's model")
    (foreign / "notes.txt").write_text("mine")
    before = snapshot(foreign)
    for extra in ([], ["trainer.resume=true"], ["trainer.overwrite=true"]):
        r = cli("train", *TINY, "trainer.epochs=1", *extra, f"hydra.run.dir={foreign}")
        line = one_error_line(r)
        assert "files dropbench did not write" in line and "notes.txt" in line, line
        assert snapshot(foreign) == before


def test_overwrite_deletes_only_dropbench_files(cli, tmp_path):
    assert cli("train", *TINY, "trainer.epochs=1", "hydra.run.dir=run").returncode == 0
    (tmp_path / "run" / "analysis.ipynb").write_text("{}")
    (tmp_path / "run" / "checkpoints" / "mine.pt").write_bytes(b"keep")
    r = cli("train", *TINY, "trainer.epochs=1", "trainer.overwrite=true", "hydra.run.dir=run")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "run" / "analysis.ipynb").read_text() == "{}"
    assert (tmp_path / "run" / "checkpoints" / "mine.pt").read_bytes() == b"keep"
    assert summary(tmp_path / "run")["status"] == "completed"


def test_a_run_dir_deleted_while_training_is_a_failure(tmp_path):
    run = tmp_path / "run"
    slow = "import time\nimport dropbench.engine.trainer as t\nE = t.Run.train_epoch\n" \
           "t.Run.train_epoch = lambda self: (time.sleep(0.5), E(self))[1]\n"
    proc = patched_cli(tmp_path, slow, "train", *TINY, "trainer.epochs=50",
                       "hydra.run.dir=run", popen=True)
    wait_for(run / rundir.METRICS)
    # moved away in one step, then deleted: a plain rmtree would race the run's own new files
    run.rename(tmp_path / "gone")
    shutil.rmtree(tmp_path / "gone")
    _, stderr = proc.communicate(timeout=120)
    lines = [ln for ln in stderr.strip().splitlines() if ln.startswith("dropbench: error")]
    assert proc.returncode == 2 and len(lines) == 1, stderr
    assert "deleted or moved" in lines[0] and "Traceback" not in stderr
    assert not run.exists()  # no half dir made again


def read_only(path: Path):
    """Make `path` unwritable even for root (chattr +i), or skip; returns an undo."""
    os.chmod(path, 0o555)
    probe = path / ".probe"
    try:
        probe.write_text("")
    except OSError:
        return lambda: os.chmod(path, 0o755)
    probe.unlink()
    os.chmod(path, 0o755)
    if shutil.which("chattr") and subprocess.run(["chattr", "+i", path]).returncode == 0:
        return lambda: subprocess.run(["chattr", "-i", path], check=True)
    pytest.skip("cannot make a dir read-only here")


def test_a_read_only_run_dir_is_refused_in_one_line(cli, tmp_path):
    assert cli("train", *TINY, "trainer.epochs=1", "hydra.run.dir=run").returncode == 0
    for name in (rundir.LOG, rundir.LOCK):  # the first files a resume opens for writing
        (tmp_path / "run" / name).unlink()
    undo = read_only(tmp_path / "run")
    try:
        r = cli("train", *TINY, "trainer.epochs=2", "trainer.resume=true", "hydra.run.dir=run")
    finally:
        undo()
    line = one_error_line(r)
    assert "cannot write" in line and str(tmp_path / "run") in line


# --- newer formats ------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("record", [rundir.SUMMARY, rundir.MANIFEST])
def test_a_newer_format_is_refused_by_every_reader(cli, tmp_path, record):
    for name in ("run", "other"):
        assert cli("train", *TINY, "trainer.epochs=1", f"hydra.run.dir={name}").returncode == 0
    path = tmp_path / "run" / record
    path.write_text(json.dumps({**json.loads(path.read_text()), "format_version": 99}))
    before = snapshot(tmp_path / "run")
    readers = [["train", *TINY, "trainer.epochs=2", "trainer.resume=true", "hydra.run.dir=run"],
               ["diff", "run", "other"]]
    if record == rundir.SUMMARY:  # status and report read no manifest
        readers += [["status", "run"], ["report", "run", "other", "--out", "report"]]
    for args in readers:
        line = one_error_line(cli(*args))
        assert "format_version 99" in line and "upgrade dropbench" in line, (args, line)
    assert snapshot(tmp_path / "run") == before


# --- messages -----------------------------------------------------------------------------
def test_diff_names_the_dir_that_is_not_a_run(cli, tmp_path):
    assert cli("train", *TINY, "trainer.epochs=1", "hydra.run.dir=run").returncode == 0
    (tmp_path / "empty").mkdir()
    for args in (("run", "empty"), ("empty", "run")):
        line = one_error_line(cli("diff", *args))
        assert line.startswith("dropbench: error: empty is not a run dir"), line


def test_report_out_that_is_a_file(cli, tmp_path):
    assert cli("train", *TINY, "trainer.epochs=1", "hydra.run.dir=run").returncode == 0
    (tmp_path / "taken").write_text("a file")
    assert "is a file, not a directory" in one_error_line(cli("report", "run", "--out", "taken"))


def test_an_unreadable_checkpoint_gives_advice_that_works(cli, tmp_path):
    assert cli("train", *TINY, "trainer.epochs=1", "hydra.run.dir=run").returncode == 0
    (tmp_path / "run" / rundir.LAST).write_bytes(b"not a checkpoint")
    line = one_error_line(cli("train", *TINY, "trainer.epochs=2", "trainer.resume=true",
                              "hydra.run.dir=run"))
    assert "trainer.overwrite=true" in line
    r = cli("train", *TINY, "trainer.epochs=2", "trainer.overwrite=true", "hydra.run.dir=run")
    assert r.returncode == 0, r.stderr


def test_an_unquoted_non_ascii_value_says_to_quote_it(cli, tmp_path):
    line = one_error_line(cli("train", *TINY, "hydra.run.dir=ünï"))
    assert "must be quoted" in line and "\"hydra.run.dir='ünï'\"" in line


def test_an_archive_that_is_not_gzip_is_named_damaged(tmp_path):
    import gzip

    from dropbench.data.manage import damaged_archives

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "good.gz").write_bytes(gzip.compress(b"idx"))
    (raw / "page.gz").write_text("<html>not found</html>")
    assert damaged_archives(tmp_path) == [raw / "page.gz"]


BLOCK_PLUGINS = """
import pkgutil
BLOCKED = ("hydra_plugins.hydra_joblib_launcher", "hydra_plugins.hydra_submitit_launcher",
           "hydra_plugins.hydra_optuna_sweeper")
WALK = pkgutil.walk_packages
pkgutil.walk_packages = lambda *a, **k: (m for m in WALK(*a, **k)
                                         if not m.name.startswith(BLOCKED))
"""


@pytest.mark.parametrize("option, package", [
    ("hydra/launcher=joblib", "hydra-joblib-launcher"),
    ("hydra/launcher=slurm", "hydra-submitit-launcher"),
    ("hydra/sweeper=dropout_search", "hydra-optuna-sweeper")])
def test_a_missing_plugin_gets_its_install_line(tmp_path, option, package):
    r = patched_cli(tmp_path, BLOCK_PLUGINS, "train", "-m", *TINY, option)
    line = one_error_line(r)
    assert 'pip install "dropbench[cluster]"' in line and package in line, line
