"""Faults injected through the real CLI: every run survives or fails loudly, nothing is lost."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import run_cli
from data_files import write_mnist

SLOW_ENOUGH = ["trainer.epochs=6", "trainer.batch_size=16", "model.hidden=[256,256]",
               "trainer.progress=false", "seed=5"]


def env_for(tmp_path: Path) -> dict:
    env = {**os.environ, "DROPBENCH_DATA": str(tmp_path / "data"), "OMP_NUM_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def start(tmp_path: Path, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dropbench.cli", "train", *args],
                            cwd=tmp_path, env=env_for(tmp_path), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def wait_for_epochs(proc, metrics: Path, n: int, timeout=180) -> None:
    """Return once metrics.csv holds n epochs, with the run still going."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) > n:
            assert proc.poll() is None, "the run finished before the fault could be injected"
            return
        time.sleep(0.05)
    raise AssertionError("run made no progress")


def rows(run: Path) -> list[dict]:
    with open(run / "metrics.csv") as f:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(f)]


def summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def test_sigkill_then_resume_is_bit_for_bit(tmp_path):
    proc = start(tmp_path, *SLOW_ENOUGH, "hydra.run.dir=killed")
    wait_for_epochs(proc, tmp_path / "killed" / "metrics.csv", 1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = tmp_path / "killed"
    # whatever the moment of the kill, every file there is whole
    assert summary(killed)["status"] == "running"
    assert len(rows(killed)) >= 1
    assert torch.load(killed / "checkpoints/last.pt", weights_only=False)["epoch"] >= 1

    resumed = run_cli("train", *SLOW_ENOUGH, "trainer.resume=true", "hydra.run.dir=killed",
                      cwd=tmp_path, env=env_for(tmp_path))
    assert resumed.returncode == 0, resumed.stderr
    straight = run_cli("train", *SLOW_ENOUGH, "hydra.run.dir=straight", cwd=tmp_path,
                       env=env_for(tmp_path))
    assert straight.returncode == 0, straight.stderr
    assert rows(killed) == rows(tmp_path / "straight")
    for key in ("test_loss", "test_acc", "best_epoch", "status"):
        assert summary(killed)[key] == summary(tmp_path / "straight")[key]
    assert not list(killed.rglob(".*.tmp"))


def test_sigterm_saves_marks_interrupted_and_resumes(tmp_path):
    proc = start(tmp_path, *SLOW_ENOUGH, "trainer.epochs=500", "hydra.run.dir=run")
    wait_for_epochs(proc, tmp_path / "run" / "metrics.csv", 1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.count("\n") == 1 and "trainer.resume=true" in err
    s = summary(tmp_path / "run")
    assert s["status"] == "interrupted"
    last = torch.load(tmp_path / "run/checkpoints/last.pt", weights_only=False)
    assert last["epoch"] == s["epochs_run"] == len(rows(tmp_path / "run"))
    done = run_cli("train", *SLOW_ENOUGH, f"trainer.epochs={s['epochs_run'] + 1}",
                   "trainer.resume=true", "hydra.run.dir=run", cwd=tmp_path,
                   env=env_for(tmp_path))
    assert done.returncode == 0, done.stderr
    assert summary(tmp_path / "run")["status"] == "completed"


def test_divergence_stops_the_run_and_keeps_the_last_good_checkpoint(cli, tmp_path):
    r = cli("train", "optim.lr=1e6", "trainer.epochs=5", "hydra.run.dir=run")
    assert r.returncode == 2 and "diverged" in r.stderr and "optim.lr" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    s = summary(tmp_path / "run")
    assert s["status"] == "diverged"
    last = torch.load(tmp_path / "run/checkpoints/last.pt", weights_only=False)
    assert last["epoch"] == s["epochs_run"]
    params = torch.cat([p.flatten() for p in last["model"].values()])
    assert torch.isfinite(params).all(), "the kept checkpoint must be the last good one"


def test_divergence_inside_a_sweep_spares_the_other_jobs(cli, tmp_path):
    r = cli("train", "-m", "optim.lr=0.05,1e6", "trainer.epochs=2", "model.hidden=[32]",
            "hydra.sweep.dir=sweep")
    assert r.returncode == 2 and "diverged" in r.stderr
    # job dirs: the sorted overrides, values as the sweeper spells them
    fixed = "model.hidden=[32],optim.lr={}"
    assert summary(tmp_path / "sweep" / fixed.format("0.05"))["status"] == "completed"
    assert summary(tmp_path / "sweep" / fixed.format("1000000.0"))["status"] == "diverged"
    # the sweep's report lists the diverged job by the state the trainer wrote
    report = (tmp_path / "sweep/report/summary.md").read_text()
    assert f"| {fixed.format('1000000.0')} | diverged | DropbenchError: training diverged" in report


@pytest.mark.parametrize("damage", ["truncate", "alter"])
def test_corrupt_mnist_names_the_file(cli, tmp_path, damage):
    raw = write_mnist(tmp_path / "data")
    target = raw / "t10k-labels-idx1-ubyte"
    data = bytearray(target.read_bytes())
    target.write_bytes(bytes(data[:-7]) if damage == "truncate" else b"\x00\x00\x0c" + data[3:])
    r = cli("train", "dataset=mnist", "dataset.download=false", "hydra.run.dir=run")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert str(target) in r.stderr and "delete it" in r.stderr


def test_unwritable_output_dir(cli, tmp_path):
    (tmp_path / "a_file").write_text("not a directory")
    for args in (["hydra.run.dir=a_file/run"], ["-m", "seed=0", "hydra.sweep.dir=a_file/sw"]):
        r = cli("train", *args)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert "a_file" in r.stderr and "pick a writable output directory" in r.stderr


def test_full_disk_gives_a_clear_error_and_keeps_the_old_file(tmp_path):
    """The disk fills up at the first write after the first epoch: the CLI says so in one
    line, and the files already there stay whole."""
    script = """
import errno, os, sys
from dropbench import atomic
real_fsync, calls = os.fsync, []
def fsync(fd):
    calls.append(fd)
    if len(calls) > 10:  # .hydra/ (3 files), manifest, checkpoint, summary, epoch 1 (4)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    real_fsync(fd)
atomic.os.fsync = fsync  # every durable write goes through dropbench.atomic
from dropbench.cli import main
main(sys.argv[1:])
"""
    r = subprocess.run([sys.executable, "-c", script, "train", "trainer.epochs=3",
                        "trainer.progress=false", "hydra.run.dir=run"], cwd=tmp_path,
                       env=env_for(tmp_path), capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert "No space left on device" in r.stderr and "free disk space" in r.stderr
    run = tmp_path / "run"
    assert len(rows(run)) >= 1  # earlier epochs' files are intact and parse
    json.loads((run / "summary.json").read_text())
    assert not list(run.rglob(".*.tmp"))
