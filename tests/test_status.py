"""`dropbench status`: a sweep's jobs read from their files while it runs and after (synthetic
sweep dirs with controlled file times), the plan of jobs not started yet, and the multirun's
per-job progress lines on a real sweep."""

import json
import os

import pytest
import yaml

from dropbench import DropbenchError
from dropbench.status import render, show, sweep_jobs
from test_report import make_run

BASIC = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
T0 = 1_700_000_000.0  # the file times below are set relative to this "now"


def multirun_yaml(sweep, task, sweeper=None):
    sweep.mkdir(parents=True, exist_ok=True)
    hydra = {"sweeper": sweeper or {"_target_": BASIC, "params": None},
             "overrides": {"task": task}}
    (sweep / "multirun.yaml").write_text(yaml.safe_dump({"hydra": hydra}))


def job(sweep, name, overrides, started, updated, **run):
    run_dir = make_run(sweep / name, **run)
    (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    os.utime(run_dir / ".hydra" / "config.yaml", (started, started))
    os.utime(run_dir / "summary.json", (updated, updated))
    return run_dir


@pytest.fixture
def running_sweep(tmp_path):
    """dropout.p=0,0.5 x seed=0,1 (4 jobs): done, running (2 of 5 epochs), failed, not started."""
    sweep = tmp_path / "sweep"
    multirun_yaml(sweep, ["dropout.p=0,0.5", "seed=0,1", "trainer.epochs=5"])
    common = ["trainer.epochs=5"]
    job(sweep, "0", ["dropout.p=0", "seed=0", *common], T0 - 100, T0 - 60, p=0.0, epochs=5)
    job(sweep, "1", ["dropout.p=0", "seed=1", *common], T0 - 50, T0 - 4, p=0.0, seed=1,
        epochs=5, done=2, status="running")
    failed = job(sweep, "2", ["dropout.p=0.5", "seed=0", *common], T0 - 10, T0 - 3, p=0.5,
                 epochs=5, done=1)
    summary = json.loads((failed / "summary.json").read_text())
    (failed / "summary.json").write_text(json.dumps(
        {**summary, "status": "failed", "error": "DropbenchError: out of memory\nmore"}))
    os.utime(failed / "summary.json", (T0 - 3, T0 - 3))
    return sweep


def test_every_job_with_status_epoch_best_and_eta(running_sweep):
    jobs, total = sweep_jobs(running_sweep, now=T0)
    assert total == 4
    by_overrides = {" ".join(j.overrides[:2]): j for j in jobs}
    done, running = by_overrides["dropout.p=0 seed=0"], by_overrides["dropout.p=0 seed=1"]
    assert (done.status, done.epoch, done.epochs) == ("completed", 5, 5)
    assert done.elapsed_s == pytest.approx(40.0)  # started T0-100, ended T0-60
    assert done.setup_s == pytest.approx(40.0 - 7.5)  # make_run: wall_s = 1.5 s per epoch
    # running: 2 epochs of 1.5 s; the best so far is the lowest val loss row (epoch 2)
    assert (running.status, running.epoch) == ("running", 2)
    assert running.best_val == pytest.approx(0.82)
    assert running.elapsed_s == pytest.approx(50.0)
    assert running.eta_s == pytest.approx(3 * 1.5 - 4.0)  # 3 epochs left, 4 s into the next
    assert by_overrides["dropout.p=0.5 seed=1"].status == "pending"
    table = render(jobs, total)
    lines = table.splitlines()
    assert lines[0].split() == ["job", "overrides", "status", "epoch", "val", "acc", "at",
                                "best", "epoch", "elapsed", "ETA"]
    assert lines[1].split() == ["0", "dropout.p=0", "seed=0", "completed", "5/5", "85.00",
                                "%", "40s", "–"]
    assert lines[2].split()[3:] == ["running", "2/5", "82.00", "%", "50s", "0s"]
    assert "failed (DropbenchError: out of memory)" in lines[3]
    assert lines[4].split() == ["–", "dropout.p=0.5", "seed=1", "pending", "–", "–", "–", "–"]
    # sweep ETA: epochs left (3 running + 5 pending) x 1.5 s per epoch = 12 s, plus one
    # pending job's setup time: 40 - 7.5 = 32.5 s on the completed job, 7 - 1.5 = 5.5 s on
    # the failed one, mean 19 s; one job running: 12 + 19 = 31 s
    assert lines[-1] == "2/4 done (completed 1, failed 1), 1 running, 1 pending; ETA 31s"


def test_a_job_validated_on_its_training_rows_says_so(tmp_path):
    """A UCI refit (summary.json val_is=train) has no held-out rows: its best "val" score is
    a training score, and the progress line and the table say so."""
    from dropbench.status import job_line

    sweep = tmp_path / "sweep"
    multirun_yaml(sweep, ["dropout.p=0,0.5"])
    for i, p in enumerate(["0", "0.5"]):
        run = job(sweep, str(i), [f"dropout.p={p}"], T0 - 100, T0 - 60, p=float(p))
        if i:
            summary = json.loads((run / "summary.json").read_text())
            (run / "summary.json").write_text(json.dumps({**summary, "val_is": "train"}))
            os.utime(run / "summary.json", (T0 - 60, T0 - 60))
    jobs, total = sweep_jobs(sweep, now=T0)
    held_out, refit = sorted(jobs, key=lambda j: j.name)
    assert "val acc at best epoch 83.00 %" in job_line(held_out, jobs, total)
    line = job_line(refit, jobs, total)
    assert "acc on its own training rows at best epoch" in line and "val acc" not in line
    assert "83.00 % (train rows)" in render(jobs, total)


def test_a_silent_running_job_is_flagged(running_sweep):
    jobs, _ = sweep_jobs(running_sweep, now=T0 + 600)
    running = next(j for j in jobs if j.status == "running")
    assert running.note == "no update for 10m04s: killed?"
    # nothing trains it: no ETA for the job, nor for a sweep whose only running job it is
    assert running.presumed_killed and running.eta_s is None
    assert "ETA" not in render(jobs, None).splitlines()[-1]
    fresh, _ = sweep_jobs(running_sweep, now=T0)
    assert "ETA" in render(fresh, None).splitlines()[-1]


def test_search_sweepers_give_a_total_of_trials(tmp_path):
    sweep = tmp_path / "optuna"
    multirun_yaml(sweep, ["dropout.p=interval(0,0.8)"],
                  sweeper={"_target_": "hydra_plugins.optuna.OptunaSweeper", "n_trials": 20})
    job(sweep, "0", ["dropout.p=0.31"], T0 - 10, T0 - 5, p=0.31)
    jobs, total = sweep_jobs(sweep, now=T0)
    assert total == 20 and len(jobs) == 1
    assert render(jobs, total).splitlines()[-1].startswith("1/20 done (completed 1), 19 pending")


def test_a_resumes_own_overrides_are_no_jobs_and_watch_ends(tmp_path, capsys):
    """The resume's multirun.yaml adds trainer.resume and other threads and epochs: the plan
    still names the two jobs the dirs hold, nothing is pending, and --watch prints once."""
    sweep = tmp_path / "sweep"
    multirun_yaml(sweep, ["dropout.p=0,0.5", "trainer.resume=true", "++trainer.threads=2",
                          "trainer.epochs=5", "logger=[csv,tensorboard]"])
    job(sweep, "dropout.p=0", ["dropout.p=0", "trainer.epochs=3"], T0 - 50, T0 - 40, p=0.0)
    job(sweep, "dropout.p=0.5", ["dropout.p=0.5", "trainer.epochs=3"], T0 - 40, T0 - 30)
    jobs, total = sweep_jobs(sweep, now=T0)
    assert [(j.name, j.overrides, j.status) for j in jobs] == [
        ("dropout.p=0", ["dropout.p=0"], "completed"),
        ("dropout.p=0.5", ["dropout.p=0.5"], "completed")]
    assert total == 2
    show(sweep, watch=0.01)  # returns: every job has ended
    out = capsys.readouterr().out
    assert "pending" not in out and out.count("2/2 done (completed 2)") == 1


def test_a_resume_of_some_jobs_still_counts_every_job_of_the_dir(tmp_path):
    sweep = tmp_path / "sweep"
    multirun_yaml(sweep, ["dropout.p=0", "trainer.resume=true"])  # resumed one job only
    job(sweep, "dropout.p=0", ["dropout.p=0"], T0 - 50, T0 - 40, p=0.0)
    job(sweep, "dropout.p=0.5", ["dropout.p=0.5"], T0 - 40, T0 - 30)
    jobs, total = sweep_jobs(sweep, now=T0)
    assert render(jobs, total).splitlines()[-1] == "2/2 done (completed 2)"


def test_a_path_typed_otherwise_on_resume_is_the_same_job(tmp_path):
    sweep = tmp_path / "sweep"
    multirun_yaml(sweep, ["dataset.path='/data/my corpus'", "trainer.resume=true"])
    job(sweep, "dataset.path=my_corpus-0a1b2c3d", ["dataset.path=/data/my\\ corpus"], T0 - 50,
        T0 - 40)
    jobs, total = sweep_jobs(sweep, now=T0)
    assert [(j.overrides, j.status) for j in jobs] == [(["dataset.path=/data/my corpus"],
                                                        "completed")]
    assert total == 1


def test_a_job_in_two_dirs_is_listed_and_counted_once(tmp_path):
    """A sweep resumed under an earlier naming left a second dir per job (named with
    trainer.threads); the one that completed is listed, the other named below the table."""
    sweep = tmp_path / "sweep"
    multirun_yaml(sweep, ["dropout.p=0,0.5", "trainer.threads=2", "trainer.resume=true"])
    job(sweep, "dropout.p=0,trainer.threads=1", ["dropout.p=0", "trainer.threads=1"], T0 - 90,
        T0 - 80, p=0.0)
    job(sweep, "dropout.p=0,trainer.threads=2", ["trainer.threads=2", "trainer.resume=True",
                                                 "dropout.p=0"], T0 - 20, T0 - 5, p=0.0,
        done=1, status="running")
    jobs, total = sweep_jobs(sweep, now=T0)
    assert [(j.name, j.status) for j in jobs] == [("dropout.p=0,trainer.threads=1", "completed"),
                                                  ("", "pending")]
    assert jobs[0].duplicates == ["dropout.p=0,trainer.threads=2"] and total == 2
    lines = render(jobs, total).splitlines()
    assert ("dropout.p=0,trainer.threads=2: the same job as dropout.p=0,trainer.threads=1 "
            "(differs only in keys a resume may change), counted once") in lines
    assert lines[-1].startswith("1/2 done (completed 1), 1 pending")


def test_a_sweep_over_epochs_in_numbered_dirs_keeps_both_jobs(tmp_path):
    """trainer.epochs does not name a job, but a sweep that plans it twice has two jobs."""
    sweep = tmp_path / "sweep"
    multirun_yaml(sweep, ["trainer.epochs=1,2"])  # with hydra.sweep.subdir=${hydra.job.num}
    job(sweep, "0", ["trainer.epochs=1"], T0 - 50, T0 - 40, epochs=1)
    job(sweep, "1", ["trainer.epochs=2"], T0 - 40, T0 - 30, epochs=2)
    jobs, total = sweep_jobs(sweep, now=T0)
    assert [(j.name, j.epochs, j.duplicates) for j in jobs] == [("0", 1, []), ("1", 2, [])]
    assert total == 2


def test_bad_dirs_are_one_line_errors(tmp_path, cli):
    with pytest.raises(DropbenchError, match="no jobs under"):
        sweep_jobs(tmp_path)
    result = cli("status", tmp_path / "nowhere")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"dropbench: error: {tmp_path / 'nowhere'} is not a directory; give a sweep dir "
        "(multirun/DATE/TIME) or a run dir"]
    result = cli("status", tmp_path, "--watch", "0")
    assert result.returncode == 2 and "--watch 0: give a refresh interval" in result.stderr


def test_real_sweep_prints_progress_and_status_reads_it(tmp_path, cli):
    result = cli("train", "-m", "dataset.val_size=300,600,1600", "trainer.epochs=2",
                 "dataset.train_subset=200", "trainer.progress=false", "hydra.sweep.dir=sweep")
    assert result.returncode != 0  # digits has 1500 training images: val_size=1600 fails
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("job ")]
    # one line per job as it ends, in the sweep's order (job dirs may be named either way)
    assert [ln.split(": ")[0].rsplit("(", 1)[1] for ln in lines] == [
        "dataset.val_size=300)", "dataset.val_size=600)", "dataset.val_size=1600)"]
    assert "completed, val acc at best epoch" in lines[0]
    assert "| 1/3 done (completed 1), 2 pending" in lines[0]
    assert lines[2].split(" | ")[1] == "3/3 done (completed 2, failed 1)"
    assert "failed (dataset.val_size=1600 leaves no training data" in lines[2]
    status = cli("status", "sweep", "--watch", "1")  # every job has ended: one table, exit 0
    assert status.returncode == 0, status.stderr
    rows = {next(w for w in r.split() if w.startswith("dataset.val_size=")): r
            for r in status.stdout.splitlines()[2:5]}
    assert sorted(rows) == ["dataset.val_size=1600", "dataset.val_size=300",
                            "dataset.val_size=600"]
    for ok in ("dataset.val_size=300", "dataset.val_size=600"):
        assert {"completed", "2/2"} <= set(rows[ok].split())
    assert "failed (dataset.val_size=1600" in rows["dataset.val_size=1600"]
    assert status.stdout.splitlines()[-1] == "3/3 done (completed 2, failed 1)"


def test_a_job_file_is_parsed_again_only_when_it_changes(tmp_path):
    """The progress line reads every job's files as each job ends: an unchanged file is taken
    from the last read, a rewritten one is read again."""
    import os

    from dropbench.status import read_unless_unchanged

    path = tmp_path / "metrics.csv"
    path.write_text("epoch\n1\n")
    calls = []

    def read(p):
        calls.append(p)
        return p.read_text()

    assert read_unless_unchanged(path, read) == "epoch\n1\n"
    assert read_unless_unchanged(path, read) == "epoch\n1\n" and len(calls) == 1
    path.write_text("epoch\n1\n2\n")
    assert read_unless_unchanged(path, read) == "epoch\n1\n2\n" and len(calls) == 2
    stamp = path.stat().st_mtime_ns
    path.write_text("epoch\n1\n3\n")  # same size: the new mtime tells
    os.utime(path, ns=(stamp + 1000, stamp + 1000))
    assert read_unless_unchanged(path, read) == "epoch\n1\n3\n" and len(calls) == 3
    assert read_unless_unchanged(tmp_path / "gone.csv", lambda p: "missing") == "missing"
