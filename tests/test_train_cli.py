"""The real CLI, end to end, in a subprocess: run dirs, sweeps, resume, and every bad input."""

import csv
import json
from pathlib import Path

import pytest

FAST = ["trainer.epochs=2", "model.hidden=[32]", "trainer.progress=false"]


def read_metrics(run_dir: Path) -> list[dict]:
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def test_train_writes_the_run_dir_contract(cli, tmp_path):
    r = cli("train", *FAST, "hydra.run.dir=run")
    assert r.returncode == 0, r.stderr
    run = tmp_path / "run"
    for name in ("metrics.csv", "summary.json", "train.log", "checkpoints/last.pt",
                 "checkpoints/best.pt", ".hydra/config.yaml", ".hydra/overrides.yaml"):
        assert (run / name).is_file(), name
    rows = read_metrics(run)
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert list(rows[0]) == ["epoch", "lr", "seconds", "train_loss", "train_acc",
                             "train_eval_loss", "train_eval_acc", "val_loss", "val_acc"]
    s = summary(run)
    assert s["status"] == "completed" and s["epochs_run"] == 2 and s["metric"] == "acc"
    assert 0.3 < s["test_acc"] <= 1.0  # 2 epochs on digits beat chance (0.1) by far
    best = min(rows, key=lambda r: float(r["val_loss"]))
    assert s["best_epoch"] == int(best["epoch"])
    assert s["best_val_loss"] == pytest.approx(float(best["val_loss"]))
    assert s["overrides"] == FAST  # hydra.* overrides are not part of the task
    assert s["n_params"] == 64 * 32 + 32 + 32 * 10 + 10
    assert {"dropbench", "torch"} <= set(s["versions"]) and s["device"] == "cpu"
    assert "epoch 2/2" in (run / "train.log").read_text()
    assert not list(run.rglob("*.tmp")), "temp files left behind"


def test_multirun_sweep_runs_every_job(cli, tmp_path):
    r = cli("train", "-m", "dropout.p=0,0.5", "seed=0,1", *FAST, "hydra.sweep.dir=sweep")
    assert r.returncode == 0, r.stderr
    jobs = sorted(p.parent for p in (tmp_path / "sweep").glob("*/summary.json"))
    assert len(jobs) == 4
    seen = {(tuple(summary(j)["overrides"][:2])) for j in jobs}
    assert seen == {(f"dropout.p={p}", f"seed={s}") for p in ("0", "0.5") for s in (0, 1)}
    assert all(summary(j)["status"] == "completed" for j in jobs)


def test_resume_matches_an_uninterrupted_run(cli, tmp_path):
    """Train 2 epochs, resume to 4: identical metrics and test score to 4 epochs straight."""
    common = ["trainer.progress=false", "model.hidden=[32]", "seed=3"]
    assert cli("train", *common, "trainer.epochs=4", "hydra.run.dir=full").returncode == 0
    assert cli("train", *common, "trainer.epochs=2", "hydra.run.dir=part").returncode == 0
    r = cli("train", *common, "trainer.epochs=4", "trainer.resume=true", "hydra.run.dir=part")
    assert r.returncode == 0, r.stderr
    full, part = read_metrics(tmp_path / "full"), read_metrics(tmp_path / "part")
    for row in full + part:
        row.pop("seconds")
    assert part == full
    assert summary(tmp_path / "part")["test_acc"] == summary(tmp_path / "full")["test_acc"]
    assert summary(tmp_path / "part")["test_loss"] == summary(tmp_path / "full")["test_loss"]


def test_completed_run_is_never_overwritten(cli, tmp_path):
    assert cli("train", *FAST, "hydra.run.dir=run").returncode == 0
    before = (tmp_path / "run/metrics.csv").read_bytes()
    r = cli("train", *FAST, "hydra.run.dir=run")
    assert r.returncode != 0 and "trainer.overwrite=true" in r.stderr
    assert (tmp_path / "run/metrics.csv").read_bytes() == before
    assert summary(tmp_path / "run")["status"] == "completed"
    r = cli("train", *FAST, "trainer.resume=true", "hydra.run.dir=run")
    assert r.returncode == 0 and (tmp_path / "run/metrics.csv").read_bytes() == before
    assert cli("train", *FAST, "trainer.overwrite=true", "hydra.run.dir=run").returncode == 0


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["dropout.p=1.5"], "dropout.p=1.5 is out of range"),
        (["dataset=nope"], "no dataset named 'nope'"),
        (["trainer.epochs=-1"], "trainer.epochs=-1 is out of range; use an integer >= 1"),
        (["trainer.epochs=abc"], "trainer.epochs"),
        (["dropout.pp=0.5"], "dropout=standard has no key 'pp'; its keys: p, p_input"),
        (["model.activation=swish"], "model.activation='swish' is unknown"),
        (["dataset=mnist", "dataset.download=false"], "t10k-images-idx3-ubyte"),
        (["optim.name=lbfgs"], "optim.name='lbfgs' is unknown"),
        (["datset=mnist"], "unknown config key 'datset' (did you mean 'dataset'?)"),
        (["trainer.epoch=3"], "unknown config key 'trainer.epoch' (did you mean 'trainer.epochs'"),
        (["zzz=1"], "unknown config key 'zzz'; `dropbench train --cfg job` shows every key"),
    ],
)
def test_bad_input_ends_with_one_clear_line(cli, tmp_path, args, fragment):
    r = cli("train", *args, "hydra.run.dir=bad")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("dropbench: error: ") and fragment in lines[0]
    assert "Traceback" not in r.stdout + r.stderr


def test_offline_mnist_names_directory_and_files(cli, tmp_path):
    r = cli("train", "dataset=mnist", "dataset.download=false", "hydra.run.dir=bad")
    expected_dir = tmp_path / "data" / "MNIST" / "raw"
    assert str(expected_dir) in r.stderr and "train-labels-idx1-ubyte" in r.stderr
    assert summary(tmp_path / "bad")["status"] == "failed"


def test_list_version_and_hydra_passthrough(cli):
    listing = cli("list")
    assert listing.returncode == 0
    for expected in ("dataset:", "digits", "mnist", "dropout:", "standard", "optim:", "adamw"):
        assert expected in listing.stdout
    version = cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("dropbench ")
    job = cli("train", "--cfg", "job", "dropout.p=0.3")
    assert job.returncode == 0 and "p: 0.3" in job.stdout and "hidden:" in job.stdout
    assert "dropbench train" in cli("train", "--help").stdout


def test_every_subcommands_help_says_what_it_does_and_data_names_every_dataset():
    from dropbench.cli import build_parser
    from dropbench.data.manage import CHECKS

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for name, sub in commands.items():
        assert sub.description, f"`dropbench {name} -h` says nothing of what it does"
    names = next(a for a in commands["data"]._actions if a.dest == "names").help
    assert all(dataset in names for dataset in CHECKS)


def test_data_verify_reports_missing_mnist(cli, tmp_path):
    r = cli("data", "verify", "--data-dir", tmp_path / "empty")
    assert r.returncode == 2
    assert "digits" in r.stdout and "NOT OK" in r.stdout


def test_ctrl_c_checkpoints_and_marks_interrupted(tmp_path):
    """SIGINT mid-training: exit 130, status interrupted, and a resume finishes the run."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from conftest import run_cli

    env = {**os.environ, "DROPBENCH_DATA": str(tmp_path / "data")}
    env.pop("HYDRA_FULL_ERROR", None)
    args = ["train", "trainer.epochs=500", "trainer.progress=false", "hydra.run.dir=run"]
    # A shell that starts pytest in the background ignores SIGINT for it, and that would be
    # inherited: give the run the default disposition a terminal's Ctrl-C meets.
    proc = subprocess.Popen([sys.executable, "-m", "dropbench.cli", *args], cwd=tmp_path,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    metrics = tmp_path / "run" / "metrics.csv"
    deadline = time.time() + 120
    while not metrics.exists() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "trainer.resume=true" in err and "Traceback" not in err
    s = summary(tmp_path / "run")
    assert s["status"] == "interrupted" and 1 <= s["epochs_run"] < 500
    done = run_cli("train", "trainer.resume=true", f"trainer.epochs={s['epochs_run'] + 1}",
                   "trainer.progress=false", "hydra.run.dir=run", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert summary(tmp_path / "run")["status"] == "completed"
    assert len(read_metrics(tmp_path / "run")) == s["epochs_run"] + 1


def test_eval_every_records_every_nth_epoch_and_the_last(cli, tmp_path):
    """7 epochs scored every 3rd: rows for epochs 3, 6, 7; the best epoch is one of them; a
    resume from the epoch-6 checkpoint gives the same rows as the run straight through."""
    common = ["trainer.progress=false", "model.hidden=[32]", "seed=1", "trainer.eval_every=3"]
    assert cli("train", *common, "trainer.epochs=7", "hydra.run.dir=full").returncode == 0
    rows = read_metrics(tmp_path / "full")
    assert [int(r["epoch"]) for r in rows] == [3, 6, 7]
    s = summary(tmp_path / "full")
    assert s["epochs_run"] == 7 and s["best_epoch"] in (3, 6, 7)
    best = min(rows, key=lambda r: float(r["val_loss"]))
    assert s["best_val_loss"] == pytest.approx(float(best["val_loss"]))
    assert cli("train", *common, "trainer.epochs=6", "hydra.run.dir=part").returncode == 0
    r = cli("train", *common, "trainer.epochs=7", "trainer.resume=true", "hydra.run.dir=part")
    assert r.returncode == 0, r.stderr
    part = read_metrics(tmp_path / "part")
    for row in rows + part:
        row.pop("seconds")
    assert part == rows
    assert summary(tmp_path / "part")["test_loss"] == s["test_loss"]


def test_a_run_dir_saved_before_newer_keys_existed_resumes(cli, tmp_path):
    """A run dir whose .hydra/config.yaml predates trainer.eval_every, the schedule's unit and
    the regression keys (null by default) resumes; the keys read as the values then in effect."""
    import yaml

    common = ["trainer.progress=false", "model.hidden=[16]", "hydra.run.dir=run"]
    assert cli("train", *common, "trainer.epochs=1").returncode == 0
    path = tmp_path / "run/.hydra/config.yaml"
    saved = yaml.safe_load(path.read_text())
    del saved["trainer"]["eval_every"], saved["dropout"]["schedule_unit"]
    for key in ("split", "validation", "tau", "lengthscale"):
        del saved["dataset"][key]
    path.write_text(yaml.safe_dump(saved))
    r = cli("train", *common, "trainer.epochs=2", "trainer.resume=true")
    assert r.returncode == 0, r.stderr
    assert [int(row["epoch"]) for row in read_metrics(tmp_path / "run")] == [1, 2]



def test_a_scheduled_run_saved_before_schedule_units_resumes_per_epoch_only():
    from dropbench.engine.resume import changed_keys
    from dropbench.rundir import with_implied_keys

    old = with_implied_keys({"dropout": {"name": "standard", "schedule": "early"}})
    assert old["dropout"]["schedule_unit"] == "epoch"  # how such a run moved its rate
    new = {"dropout": {"name": "standard", "schedule": "early", "schedule_unit": "step"},
           "objective": {"name": "ce"}, "trainer": {"eval_every": 1}}
    assert changed_keys(old, new) == ['dropout.schedule_unit: "epoch" -> "step"']
