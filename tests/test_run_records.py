"""Run dirs that cannot lie, through the real CLI: resume guard, one writer, safe loading,
manifest, process state per run and `dropbench diff`."""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

TINY = ["model.hidden=[16]", "trainer.progress=false", "trainer.threads=1"]


def snapshot(run: Path) -> dict:
    """Every file under the run dir and its bytes."""
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*"))
            if p.is_file()}


def one_error_line(r) -> str:
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, r.stderr
    assert len(lines) == 1 and lines[0].startswith("dropbench: error: "), r.stderr
    return lines[0]


def summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def rows(run: Path) -> list[dict]:
    with open(run / "metrics.csv") as f:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(f)]


# --- resume guard -----------------------------------------------------------------------
def test_resume_with_another_setting_is_refused_and_touches_nothing(cli, tmp_path):
    assert cli("train", *TINY, "trainer.epochs=1", "optim.lr=0.05",
               "hydra.run.dir=run").returncode == 0
    before = snapshot(tmp_path / "run")
    r = cli("train", *TINY, "trainer.epochs=2", "dropout.p=0.1", "optim.lr=0.1",
            "trainer.resume=true", "hydra.run.dir=run")
    line = one_error_line(r)
    assert "dropout.p: 0.5 -> 0.1" in line and "optim.lr: 0.05 -> 0.1" in line
    assert "trainer.epochs" not in line  # extending is allowed; only the others are named
    assert snapshot(tmp_path / "run") == before
    r = cli("train", "model.hidden=[64]", "trainer.progress=false", "trainer.resume=true",
            "hydra.run.dir=run")
    assert "model.hidden: [16] -> [64]" in one_error_line(r)
    assert snapshot(tmp_path / "run") == before


def test_allowed_resume_records_each_session(cli, tmp_path):
    assert cli("train", *TINY, "trainer.epochs=1", "hydra.run.dir=run").returncode == 0
    r = cli("train", "model.hidden=[16]", "trainer.threads=2", "trainer.epochs=2",
            "trainer.resume=true", "hydra.run.dir=run")
    assert r.returncode == 0, r.stderr
    config = yaml.safe_load((tmp_path / "run/.hydra/config.yaml").read_text())
    assert config["trainer"]["epochs"] == 2 and config["trainer"]["threads"] == 2
    sessions = json.loads((tmp_path / "run/manifest.json").read_text())["sessions"]
    assert [(s["first_epoch"], s["last_epoch"], s["threads"]) for s in sessions] == [
        (1, 1, 1), (2, 2, 2)]
    assert [s["status"] for s in sessions] == ["completed", "completed"]


def test_cosine_runs_cannot_be_extended(cli, tmp_path):
    args = [*TINY, "optim.schedule=cosine", "hydra.run.dir=run"]
    assert cli("train", *args, "trainer.epochs=1").returncode == 0
    before = snapshot(tmp_path / "run")
    r = cli("train", *args, "trainer.epochs=2", "trainer.resume=true")
    assert "trainer.epochs: 1 -> 2 (not with optim.schedule=cosine)" in one_error_line(r)
    assert snapshot(tmp_path / "run") == before


@pytest.mark.slow
def test_checkpoint_of_another_model_is_one_line(cli, tmp_path):
    assert cli("train", *TINY, "trainer.epochs=1", "hydra.run.dir=run").returncode == 0
    assert cli("train", "model.hidden=[24]", "trainer.progress=false", "trainer.epochs=1",
               "hydra.run.dir=other").returncode == 0
    foreign = (tmp_path / "other/checkpoints/last.pt").read_bytes()
    (tmp_path / "run/checkpoints/last.pt").write_bytes(foreign)
    before = snapshot(tmp_path / "run")
    r = cli("train", *TINY, "trainer.epochs=2", "trainer.resume=true", "hydra.run.dir=run")
    line = one_error_line(r)
    assert "does not fit this run" in line and "Traceback" not in r.stderr
    assert snapshot(tmp_path / "run") == before


# --- one writer -------------------------------------------------------------------------
def start_training(tmp_path: Path, *args) -> subprocess.Popen:
    env = {**os.environ, "DROPBENCH_DATA": str(tmp_path / "data"), "OMP_NUM_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.Popen([sys.executable, "-m", "dropbench.cli", "train", *args],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def wait_for(path: Path, timeout=180) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.mark.slow
def test_a_second_writer_is_refused_and_a_killed_one_leaves_no_lock(cli, tmp_path):
    proc = start_training(tmp_path, *TINY, "trainer.epochs=1000", "hydra.run.dir=run")
    try:
        wait_for(tmp_path / "run/metrics.csv")
        for extra in ("trainer.resume=true", "trainer.overwrite=true"):
            r = cli("train", *TINY, "trainer.epochs=1000", extra, "hydra.run.dir=run")
            line = one_error_line(r)
            assert str(tmp_path / "run") in line and f"pid {proc.pid}" in line
            assert "being trained by another process" in line and "host " in line
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = summary(tmp_path / "run")["epochs_run"]
    r = cli("train", *TINY, f"trainer.epochs={done + 1}", "trainer.resume=true",
            "hydra.run.dir=run")
    assert r.returncode == 0, r.stderr  # the kernel dropped the dead process's lock
    assert summary(tmp_path / "run")["status"] == "completed"


def test_report_and_diff_read_a_dir_that_is_being_trained(cli, tmp_path):
    proc = start_training(tmp_path, *TINY, "trainer.epochs=1000", "hydra.run.dir=run")
    try:
        wait_for(tmp_path / "run/metrics.csv")
        assert cli("report", "run", "--out", "rep").returncode == 0
        assert cli("diff", "run", "run").returncode == 0
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


# --- safe loading -------------------------------------------------------------------------
PAYLOAD = """
import sys, torch
class WritesAFile:
    def __reduce__(self):
        return (open, (sys.argv[2], "w"))
torch.save({"epoch": 1, "model": WritesAFile()}, sys.argv[1])
"""


def test_checkpoint_that_would_run_code_is_refused(cli, tmp_path):
    assert cli("train", *TINY, "trainer.epochs=1", "hydra.run.dir=run").returncode == 0
    evil, witness = tmp_path / "run/checkpoints/last.pt", tmp_path / "pwned"
    subprocess.run([sys.executable, "-c", PAYLOAD, evil, witness], check=True)
    assert not witness.exists()
    r = cli("train", *TINY, "trainer.epochs=2", "trainer.resume=true", "hydra.run.dir=run")
    line = one_error_line(r)
    assert "safe load refuses" in line and "open" in line
    assert not witness.exists()


def test_cifar_batch_that_would_run_code_is_refused_without_checksums(cli, tmp_path):
    from test_cifar10 import write_cifar10

    folder = write_cifar10(tmp_path / "data")
    witness = tmp_path / "pwned"
    script = ("import pickle, sys\n"
              "class WritesAFile:\n"
              "    def __reduce__(self):\n"
              "        return (open, (sys.argv[2], 'w'))\n"
              "open(sys.argv[1], 'wb').write(pickle.dumps({'data': WritesAFile()}))\n")
    subprocess.run([sys.executable, "-c", script, folder / "data_batch_2", witness], check=True)
    r = cli("train", "dataset=cifar10", "dataset.checksums=false", "dataset.download=false",
            "model=lenet", *TINY[1:], "trainer.epochs=1", "hydra.run.dir=run")
    line = one_error_line(r)
    assert "ask to run code" in line and "open" in line
    assert not witness.exists()


def test_checkpoints_hold_only_plain_data(cli, tmp_path):
    assert cli("train", *TINY, "trainer.epochs=1", "hydra.run.dir=run").returncode == 0
    for name in ("last.pt", "best.pt"):
        state = torch.load(tmp_path / "run/checkpoints" / name, weights_only=True)
        assert state["epoch"] == 1


def test_last_pt_holds_the_rows_and_a_resume_restores_them(cli, tmp_path):
    """last.pt keeps the rows as one JSON text (each row formatted once); a resume reads it,
    and reads a checkpoint that holds the list of rows itself alike."""
    from dropbench.engine.io import save_checkpoint

    assert cli("train", *TINY, "trainer.epochs=2", "hydra.run.dir=run").returncode == 0
    last = tmp_path / "run/checkpoints/last.pt"
    state = torch.load(last, weights_only=True)
    assert isinstance(state["rows"], str)
    kept = json.loads(state["rows"])
    assert [r["epoch"] for r in kept] == [1, 2]
    assert [float(r["val_loss"]) for r in rows(tmp_path / "run")] == [r["val_loss"] for r in kept]
    save_checkpoint(last, {**state, "rows": kept})  # the rows as a list of plain data
    assert cli("train", *TINY, "trainer.epochs=3", "trainer.resume=true",
               "hydra.run.dir=run").returncode == 0
    assert [int(r["epoch"]) for r in rows(tmp_path / "run")] == [1, 2, 3]
    resumed = json.loads(torch.load(last, weights_only=True)["rows"])
    assert resumed[:2] == kept


# --- manifest -------------------------------------------------------------------------------
def test_manifest_records_command_git_versions_and_hardware(cli, tmp_path):
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "notes.txt").write_text("v1")
    subprocess.run(["git", "add", "notes.txt"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "one"], cwd=tmp_path, check=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True,
                            text=True, check=True).stdout.strip()
    (tmp_path / "notes.txt").write_text("v2")  # uncommitted change: dirty
    assert cli("train", *TINY, "trainer.epochs=1", "hydra.run.dir=run").returncode == 0
    manifest = json.loads((tmp_path / "run/manifest.json").read_text())
    assert manifest["format_version"] == 1 and len(manifest["config_sha256"]) == 64
    session = manifest["sessions"][0]
    assert session["command"].startswith("dropbench train ") and "hydra.run.dir=run" in \
        session["command"]
    assert session["git"] == {"commit": commit, "dirty": True, "dir": str(tmp_path)}
    assert session["versions"]["torch"] == torch.__version__
    assert {"python", "cuda", "cudnn", "numpy", "hydra-core"} <= set(session["versions"])
    assert session["cpu"]["cores"] == os.cpu_count() and session["cpu"]["model"]
    assert session["host"] and session["started"] <= session["ended"]
    assert session["gpu"] is None and session["device"] == "cpu"
    assert summary(tmp_path / "run")["format_version"] == 1


@pytest.mark.slow
def test_changed_data_is_refused_on_resume(cli, tmp_path):
    from data_files import write_mnist

    args = ["dataset=mnist", "dataset.download=false", "dataset.val_size=20", *TINY,
            "hydra.run.dir=run"]
    write_mnist(tmp_path / "data")
    assert cli("train", *args, "trainer.epochs=1").returncode == 0
    write_mnist(tmp_path / "other", seed=1)  # same files, other digits
    before = snapshot(tmp_path / "run")
    r = cli("train", *args, "trainer.epochs=2", "trainer.resume=true",
            f"data_dir={tmp_path / 'other'}")
    assert "differs from the data" in one_error_line(r)
    assert snapshot(tmp_path / "run") == before
    write_mnist(tmp_path / "copy")  # the same digits elsewhere: allowed
    r = cli("train", *args, "trainer.epochs=2", "trainer.resume=true",
            f"data_dir={tmp_path / 'copy'}")
    assert r.returncode == 0, r.stderr


# --- process state per run --------------------------------------------------------------------
def test_sequential_jobs_do_not_inherit_deterministic_mode(cli, tmp_path):
    fixed = ["trainer.epochs=1", "model.hidden=[16]", "trainer.progress=false", "trainer.threads=1"]
    r = cli("train", "-m", "trainer.deterministic=true,false", "seed=0,1", *fixed,
            "hydra.sweep.dir=sweep", "~hydra.callbacks.report")
    assert r.returncode == 0, r.stderr
    # jobs run in order (true,0) (true,1) (false,0) (false,1): the deterministic=false jobs
    # follow deterministic ones in the same process
    for det in (True, False):  # the sweeper spells the swept booleans True/False
        for seed in (0, 1):
            job = job_dir(tmp_path / "sweep", *fixed, f"trainer.deterministic={det}",
                          f"seed={seed}")
            assert summary(job)["process"] == {"threads": 1, "deterministic": det,
                                               "cudnn_benchmark": False}, job


def test_a_sweep_over_threads_alone_is_refused_before_it_writes(cli, tmp_path):
    # threads do not change what a job trains: both jobs would share one job dir
    r = cli("train", "-m", "trainer.threads=1,2", "seed=0,1", "trainer.epochs=1",
            "hydra.sweep.dir=sweep")
    assert r.returncode == 2
    line = r.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "trainer.threads" in line and "hydra.sweep.subdir" in line
    assert "would share one job dir (" in line
    assert not (tmp_path / "sweep").exists()
    # the way the message names: numbered job dirs
    r = cli("train", "-m", "trainer.threads=1,2", "trainer.epochs=1", "model.hidden=[16]",
            "trainer.progress=false", "hydra.sweep.dir=sweep",
            "hydra.sweep.subdir=${hydra.job.num}", "~hydra.callbacks.report")
    assert r.returncode == 0, r.stderr
    assert [summary(tmp_path / "sweep" / n)["process"]["threads"] for n in "01"] == [1, 2]


def test_process_state_is_restored_after_a_run(one_torch_thread):
    from dropbench.engine.accel import keep_freed_memory
    from dropbench.engine.process import process_state
    from dropbench.engine.seeding import seed_everything

    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
              os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
    umask = os.umask(0o022)
    os.umask(umask)
    with process_state():
        torch.set_num_threads(2)
        seed_everything(0, deterministic=True)  # deterministic kernels + the cuBLAS variable
        keep_freed_memory()
        os.umask(0o077)
        assert torch.are_deterministic_algorithms_enabled()
    after = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
             os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
    assert after == before
    assert os.umask(umask) == umask


# --- any (first config, resume config) pair ---------------------------------------------------
RESULT_KEYS = {"dropout.p": ["0.2", "0.5"], "seed": ["0", "1"],
               "optim.schedule": ["none", "cosine"]}


def resume_pairs():
    """(first, again): `again` keeps each of the first run's settings with probability 3/4,
    so both refusals and allowed resumes come up in a handful of examples."""
    from hypothesis import strategies as st

    @st.composite
    def pair(draw):
        first = {key: draw(st.sampled_from(values)) for key, values in RESULT_KEYS.items()}
        first["trainer.epochs"] = draw(st.sampled_from(["1", "2"]))
        again = {key: value if draw(st.sampled_from([True, True, True, False]))
                 else draw(st.sampled_from(RESULT_KEYS[key])) for key, value in first.items()
                 if key in RESULT_KEYS}
        again["trainer.epochs"] = draw(st.sampled_from(["1", "2", "3"]))
        again["trainer.progress"] = draw(st.sampled_from(["true", "false"]))
        return first, again

    return pair()


def as_overrides(setting: dict) -> list[str]:
    return [f"{k}={v}" for k, v in setting.items()]


def check_resume_pair(cli, root: Path, first: dict, again: dict) -> None:
    """Either refused in one line with the dir byte-identical, or allowed and the finished
    run equals a straight run of the config it ends up recording."""
    fixed = ["model.hidden=[8]", "trainer.threads=1", "dataset.val_size=100",
             "trainer.train_eval_size=100"]
    run = root / "run"
    assert cli("train", *fixed, *as_overrides(first), f"hydra.run.dir={run}").returncode == 0
    before = snapshot(run)
    r = cli("train", *fixed, *as_overrides(again), "trainer.resume=true",
            f"hydra.run.dir={run}")
    changed = [k for k in RESULT_KEYS if first[k] != again[k]]
    epochs_changed = first["trainer.epochs"] != again["trainer.epochs"]
    should_refuse = bool(changed) or (epochs_changed and first["optim.schedule"] == "cosine")
    if should_refuse:
        line = one_error_line(r)
        for key in changed:
            assert key in line
        assert snapshot(run) == before
        return
    assert r.returncode == 0, r.stderr
    config = yaml.safe_load((run / ".hydra/config.yaml").read_text())
    epochs = config["trainer"]["epochs"]
    assert summary(run)["epochs_run"] == len(rows(run)) == epochs
    straight = root / "straight"
    recorded = {**first, "trainer.epochs": str(epochs)}
    assert cli("train", *fixed, *as_overrides(recorded),
               f"hydra.run.dir={straight}").returncode == 0
    assert rows(run) == rows(straight)
    for key in ("test_loss", "best_epoch", "status"):
        assert summary(run)[key] == summary(straight)[key]


FIRST = {"dropout.p": "0.5", "seed": "0", "optim.schedule": "none", "trainer.epochs": "1"}
EXTENDED = {**FIRST, "trainer.epochs": "2", "trainer.progress": "true"}  # always allowed
RELABELLED = {**EXTENDED, "dropout.p": "0.2"}  # always refused


@pytest.mark.slow
@pytest.mark.parametrize("n_examples", [pytest.param(3, id="few"), pytest.param(25, id="many")])
def test_any_resume_is_refused_cleanly_or_recorded_truthfully(cli, tmp_path, n_examples):
    from hypothesis import HealthCheck, example, given
    from hypothesis import settings as hyp_settings

    counter = iter(range(10**6))

    @hyp_settings(max_examples=n_examples, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(resume_pairs())
    @example((FIRST, EXTENDED))
    @example((FIRST, RELABELLED))
    def check(pair):
        check_resume_pair(cli, tmp_path / str(next(counter)), *pair)

    check()


# --- sweeps matched by content, and diff --------------------------------------------------------
def job_dir(sweep: Path, *overrides: str) -> Path:
    from dropbench.jobdir import job_dir_name

    return sweep / job_dir_name(overrides)


def trainings_started(job: Path) -> int:
    return (job / "train.log").read_text().count("] - model: ")


def test_resumed_sweep_finds_jobs_by_overrides_in_any_order(cli, tmp_path):
    fixed = ["trainer.epochs=1", "model.hidden=[16]", "trainer.progress=false"]
    sweep = tmp_path / "sweep"
    first = cli("train", "-m", "dropout.p=0,0.5", "seed=0", *fixed, "hydra.sweep.dir=sweep",
                "~hydra.callbacks.report")
    assert first.returncode == 0, first.stderr
    old = [job_dir(sweep, *fixed, f"dropout.p={p}", "seed=0") for p in ("0", "0.5")]
    kept = {job: (job / "metrics.csv").read_bytes() for job in old}
    # reordered and extended lists, fixed overrides moved, resume flag added
    again = cli("train", "-m", *fixed[::-1], "seed=1,0", "dropout.p=0.5,0",
                "trainer.resume=true", "hydra.sweep.dir=sweep", "~hydra.callbacks.report")
    assert again.returncode == 0, again.stderr
    for job, metrics in kept.items():
        assert trainings_started(job) == 1 and (job / "metrics.csv").read_bytes() == metrics
    for p in ("0", "0.5"):
        new = job_dir(sweep, *fixed, f"dropout.p={p}", "seed=1")
        assert summary(new)["status"] == "completed" and trainings_started(new) == 1
    assert len(list(sweep.glob("*/summary.json"))) == 4


@pytest.mark.slow
def test_sweep_job_whose_saved_config_differs_is_not_reused(cli, tmp_path):
    fixed = ["trainer.epochs=1", "model.hidden=[16]", "optim.lr=0.05", "hydra.sweep.dir=sweep",
             "~hydra.callbacks.report"]
    assert cli("train", "-m", "dropout.p=0,0.5", *fixed).returncode == 0
    job = job_dir(tmp_path / "sweep", *fixed[:3], "dropout.p=0")
    config = job / ".hydra/config.yaml"  # as if the job had been made with other defaults
    config.write_text(config.read_text().replace("lr: 0.05", "lr: 0.2"))
    before = snapshot(job)
    r = cli("train", "-m", "dropout.p=0,0.5", "trainer.resume=true", *fixed)
    assert r.returncode == 2 and "optim.lr: 0.2 -> 0.05" in r.stderr
    assert snapshot(job) == before


def test_diff_names_what_differs_in_runs_and_sweeps(cli, tmp_path):
    base = ["trainer.epochs=1", "model.hidden=[16]", "trainer.progress=false"]
    assert cli("train", *base, "hydra.run.dir=a").returncode == 0
    assert cli("train", *base, "dropout.p=0.2", "hydra.run.dir=b").returncode == 0
    r = cli("diff", "a", "b")
    assert r.returncode == 0, r.stderr
    assert "dropout.p: 0.5 -> 0.2" in r.stdout
    assert "session1.command:" in r.stdout and "final metrics:" in r.stdout
    # accuracy in percent, as the logs show it (the files keep the fraction)
    test_acc = next(line for line in r.stdout.splitlines() if line.split()[:1] == ["test_acc"])
    assert [float(x) for x in re.findall(r"([\d.]+) %", test_acc)] == pytest.approx(
        [100 * summary(tmp_path / d)["test_acc"] for d in "ab"], abs=1e-3)
    # the last metrics row's scores, those only one run records too (R-Drop's train_kl)
    assert cli("train", *base, "objective=rdrop", "hydra.run.dir=c").returncode == 0
    r = cli("diff", "a", "c")
    last = {line.split()[1]: line.split()[2:] for line in r.stdout.splitlines()
            if line.strip().startswith("last ")}
    assert {"train_loss", "train_acc", "val_loss", "val_acc", "train_kl"} <= last.keys()
    assert "epoch" not in last and "seconds" not in last
    with open(tmp_path / "c" / "metrics.csv") as f:
        kl = float(list(csv.DictReader(f))[-1]["train_kl"])
    assert last["train_kl"][0] == "-" and float(last["train_kl"][1]) == pytest.approx(kl, rel=1e-5)

    sweep = ["-m", *base, "~hydra.callbacks.report"]
    assert cli("train", *sweep, "dropout.p=0,0.5", "optim.lr=0.05",
               "hydra.sweep.dir=s1").returncode == 0
    assert cli("train", *sweep, "dropout.p=0.5,0.25", "optim.lr=0.1",
               "hydra.sweep.dir=s2").returncode == 0
    r = cli("diff", "s1", "s2")
    assert r.returncode == 0, r.stderr
    assert "job dropout.p=0.5:" in r.stdout and "optim.lr: 0.05 -> 0.1" in r.stdout
    assert "only in A: dropout.p=0" in r.stdout and "only in B: dropout.p=0.25" in r.stdout
    bad = cli("diff", "a", "missing")
    assert "missing is not a directory" in one_error_line(bad)


# --- the pieces, in process -------------------------------------------------------------------
def test_changed_keys_follow_the_resume_rules():
    from dropbench.engine.resume import changed_keys

    run = {"trainer": {"epochs": 3, "threads": 1}, "optim": {"schedule": "none"},
           "dropout": {"p": 0.5}, "device": "cpu"}
    extended = {**run, "trainer": {"epochs": 6, "threads": 4}, "device": "cuda"}
    assert changed_keys(run, extended) == []
    cosine = {**run, "optim": {"schedule": "cosine"}}
    assert changed_keys(cosine, {**cosine, "trainer": {"epochs": 6, "threads": 1}}) == [
        'trainer.epochs: 3 -> 6 (not with optim.schedule=cosine)']
    assert changed_keys(run, {**run, "dropout": {"p": 0.1, "q": 1}}) == [
        "dropout.p: 0.5 -> 0.1", "dropout.q: (absent) -> 1"]


def test_cifar_batches_written_with_any_pickle_protocol_load(tmp_path):
    import pickle

    import numpy as np

    from dropbench.data.cifar import read_batch

    batch = {"data": np.arange(3072 * 2, dtype=np.uint8).reshape(2, 3072), "labels": [3, 7],
             "batch_label": "b", "filenames": [b"x.png", "y.png"]}
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        path = tmp_path / f"batch{protocol}"
        path.write_bytes(pickle.dumps(batch, protocol=protocol))
        loaded = read_batch(path)
        assert np.array_equal(loaded["data"], batch["data"])
        assert loaded["labels"] == [3, 7] and loaded["filenames"] == batch["filenames"]


def test_report_refuses_a_summary_format_it_does_not_know(tmp_path):
    from dropbench.report.collect import read_summary
    from dropbench.rundir import FORMAT_VERSION, NewerFormat

    (tmp_path / "summary.json").write_text(json.dumps({"format_version": FORMAT_VERSION}))
    assert read_summary(tmp_path)["format_version"] == FORMAT_VERSION
    (tmp_path / "summary.json").write_text(json.dumps({"format_version": FORMAT_VERSION + 1}))
    with pytest.raises(NewerFormat, match="format_version 2, newer than the 1 this dropbench "
                       "reads; upgrade dropbench"):
        read_summary(tmp_path)
