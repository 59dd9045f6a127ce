"""`dropbench status SWEEP_DIR`: where every job of a sweep stands, while it runs and after.

Reads files only (the trainer writes summary.json and metrics.csv atomically after every
epoch), so it can watch a sweep from another shell or another machine sharing the disk. Jobs
Hydra has not started yet are listed from the sweep's own record (`multirun.yaml`): Hydra's
basic sweeper expands the same override lists in the same order.

A job is what it trains: its overrides without those a resume may change (dropbench/jobdir.py).
So the overrides of a resume (`trainer.resume=true`, other threads) are no jobs of their own,
and a job found in two dirs (a sweep resumed under an earlier naming of job dirs) is listed
and counted once, with a line naming the other dir.
"""

import csv
import json
import math
import os
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from dropbench import rundir, units
from dropbench.errors import DropbenchError
from dropbench.rundir import find_run_dirs, parse_yaml, progress_rank

FINAL = {"completed", "failed", "diverged", "interrupted", "unreadable"}
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
NOTE_WIDTH = 48  # a failed job's error is cut to this in the table (the line has all of it)
STALE_AFTER_S = 120.0  # a running job silent for 3 epochs + this long is flagged
HEARTBEAT_MISSED = 3  # heartbeats a job on another host may miss before it is flagged
KILLED = "killed?"  # ends the note of an unfinished job that no process trains any more


@dataclass
class Job:
    name: str  # the job dir relative to the sweep dir ("" when not started)
    overrides: list[str]  # what the job trains: jobdir.job_overrides of its overrides
    status: str  # pending, starting, running, or a final status
    epoch: int = 0
    epochs: int | None = None
    metric: str | None = None
    best_val: float | None = None
    val_is_train: bool = False  # validated on its own training rows: best_val is a training score
    presumed_killed: bool = False  # unfinished, and no process trains it (its note says why)
    elapsed_s: float = 0.0
    eta_s: float | None = None
    note: str = ""
    setup_s: float | None = None  # a finished job's time outside its epochs (start, data, test)
    epochs_s: float = 0.0  # time spent in epochs (summary.json wall_s)
    duplicates: list[str] = field(default_factory=list)  # other dirs of the job, not counted


def read_yaml(path: Path):
    try:
        return parse_yaml(path.read_text())
    except (OSError, ValueError, yaml.YAMLError):  # ValueError: not UTF-8 text
        return None


def read_job(run_dir: Path, sweep_dir: Path, now: float) -> Job:
    """One job's state from its files; a damaged file makes the job `unreadable`, with the
    reason, instead of stopping the table."""
    try:
        return read_job_files(run_dir, sweep_dir, now)
    except (TypeError, ValueError, AttributeError, KeyError) as e:  # fields of the wrong type
        return Job(os.path.relpath(run_dir, sweep_dir), [], "unreadable",
                   note=f"its files hold values of the wrong type ({type(e).__name__})")


# path -> ((mtime_ns, size), what was read from it): a sweep's progress line reads every job's
# files each time a job ends, and a file that has not changed is not parsed again
READ: dict[Path, tuple[tuple[int, int], object]] = {}


def read_unless_unchanged(path: Path, read):
    """read(path), or what it gave last time if the file's mtime and size are the same."""
    try:
        st = path.stat()
    except OSError:
        return read(path)
    stamp = (st.st_mtime_ns, st.st_size)
    seen = READ.get(path)
    if seen is None or seen[0] != stamp:
        seen = READ[path] = (stamp, read(path))
    return seen[1]


def recorded_overrides(path: Path) -> tuple[str, ...]:
    recorded = read_yaml(path)
    return tuple(job_identity(recorded if isinstance(recorded, list) else []))


def read_job_files(run_dir: Path, sweep_dir: Path, now: float) -> Job:
    name = os.path.relpath(run_dir, sweep_dir)
    overrides = list(read_unless_unchanged(run_dir / ".hydra" / "overrides.yaml",
                                           recorded_overrides))
    epochs = read_unless_unchanged(run_dir / ".hydra" / "config.yaml",
                                   lambda path: configured_epochs(read_yaml(path)))
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
        updated = (run_dir / "summary.json").stat().st_mtime
    except FileNotFoundError:
        return Job(name, overrides, "starting", epochs=epochs, note=liveness(run_dir, now) or "")
    except (OSError, ValueError) as e:  # writes are atomic: this is damage, not a write
        return Job(name, overrides, "unreadable", epochs=epochs,
                   note=f"summary.json is unreadable ({type(e).__name__})")
    if not isinstance(summary, dict):
        return Job(name, overrides, "unreadable", epochs=epochs,
                   note="summary.json is not a JSON object")
    rundir.check_format(summary, run_dir / rundir.SUMMARY)  # a newer dropbench's: refused
    job = Job(name, overrides, summary.get("status", "unknown"), epochs=epochs,
              metric=summary.get("metric"), note=first_line(summary.get("error")))
    rows, bad_rows = read_unless_unchanged(run_dir / "metrics.csv", read_rows)
    job.epoch = summary.get("epochs_run") or len(rows)
    epochs_s = float(summary.get("wall_s") or sum(r.get("seconds", 0.0) for r in rows))
    job.epochs_s = job.elapsed_s = epochs_s
    job.best_val = best_val(summary, rows, job.metric)
    job.val_is_train = summary.get("val_is") == rundir.VAL_IS_TRAIN
    try:  # Hydra writes the job's config when the job starts: wall-clock time since then
        started = (run_dir / ".hydra" / "config.yaml").stat().st_mtime
        job.elapsed_s = max(epochs_s, (updated if job.status in FINAL else now) - started)
    except OSError:
        started = None
    if job.status in FINAL and started is not None:
        job.setup_s = job.elapsed_s - epochs_s
    if job.status == "running" and job.epoch and epochs:
        since = max(0.0, now - updated)  # into the epoch in progress
        per_epoch = epochs_s / job.epoch
        job.eta_s = max(0.0, (epochs - job.epoch) * per_epoch - since)
        if since > 3 * per_epoch + STALE_AFTER_S:
            job.note = f"no update for {duration(since)}: {KILLED}"
    if job.status == "running":
        job.note = liveness(run_dir, now) or job.note
    job.presumed_killed = job.note.endswith(KILLED)
    if job.presumed_killed:  # nobody trains it: no time left to estimate
        job.eta_s = None
    if bad_rows:
        job.note = job.note or bad_rows
    return job


def job_identity(overrides) -> list[str]:
    """The overrides that say what a job trains (jobdir.job_overrides); an override Hydra
    cannot parse is kept as it is."""
    from hydra.errors import HydraException

    from dropbench.jobdir import job_overrides

    try:
        return job_overrides(overrides)
    except HydraException:
        return sorted(map(str, overrides))


# --- liveness and unreadable files -----------------------------------------------------------
def liveness(run_dir: Path, now: float) -> str | None:
    """'killed?' with the evidence when no process trains an unfinished job any more, else
    None. The training process holds an flock on rundir.LOCK until it ends: on its own host
    a lock nobody holds means the process is gone. From another host, the lock file's age
    tells: the process touches it every rundir.HEARTBEAT_S seconds."""
    lock = run_dir / rundir.LOCK
    try:
        stat = lock.stat()
        signed = json.loads(lock.read_bytes() or b"{}")
    except FileNotFoundError:
        return never_locked(run_dir, now)
    except (OSError, ValueError):
        signed = {}
        stat = None
    if stat is None:
        return None
    host = signed.get("host") if isinstance(signed, dict) else None
    if host == socket.gethostname() and Path("/proc/locks").is_file():
        if rundir.local_flock_holder(stat.st_ino) is None:
            return f"process {signed.get('pid')} is gone: {KILLED}"
        return None
    age = now - stat.st_mtime
    if age > HEARTBEAT_MISSED * rundir.HEARTBEAT_S:
        return f"no heartbeat for {duration(age)}: {KILLED}"
    return None


def never_locked(run_dir: Path, now: float) -> str | None:
    """A job dir Hydra made whose process never locked it: died before training began."""
    try:
        age = now - run_dir.stat().st_mtime
    except OSError:
        return None
    if age > HEARTBEAT_MISSED * rundir.HEARTBEAT_S:
        return f"never started training ({duration(age)} ago): {KILLED}"
    return None


def configured_epochs(config) -> int | None:
    trainer = config.get("trainer") if isinstance(config, dict) else None
    epochs = trainer.get("epochs") if isinstance(trainer, dict) else None
    return epochs if isinstance(epochs, int) else None


def first_line(text) -> str:
    return str(text).strip().splitlines()[0] if text and str(text).strip() else ""


def read_rows(path: Path) -> tuple[list[dict], str]:
    """(metrics.csv's rows, '' or why the file cannot be read); a missing file has no rows."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            return [{k: to_float(v) for k, v in row.items()} for row in csv.DictReader(f)], ""
    except FileNotFoundError:
        return [], ""
    except (OSError, ValueError, csv.Error) as e:  # binary or damaged: UnicodeDecodeError, ...
        return [], f"metrics.csv is unreadable ({type(e).__name__})"


def to_float(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def best_val(summary: dict, rows: list[dict], metric: str | None) -> float | None:
    """summary.json's best, else the metric at the lowest val loss so far (the trainer's rule)."""
    if not metric:
        return None
    if summary.get(rundir.best_val_key(metric)) is not None:
        return float(summary[rundir.best_val_key(metric)])
    scored = [r for r in rows if not math.isnan(r.get("val_loss", math.nan))]
    return min(scored, key=lambda r: r["val_loss"]).get(f"val_{metric}") if scored else None


# --- the sweep's planned jobs ---------------------------------------------------------------
def planned_jobs(sweep_dir: Path) -> tuple[list[list[str]] | None, int | None]:
    """(override lists of every job the basic sweeper will run, or None; the total, if known)."""
    hydra = (read_yaml(sweep_dir / "multirun.yaml") or {}).get("hydra") or {}
    sweeper = hydra.get("sweeper") or {}
    if sweeper.get("n_trials"):  # Optuna and friends: a number of trials, not a list
        return None, int(sweeper["n_trials"])
    if sweeper.get("_target_") != BASIC_SWEEPER:
        return None, None
    task = [str(o) for o in (hydra.get("overrides") or {}).get("task") or []]
    params = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
    try:
        jobs = expand(params + task)
    except Exception:  # an override Hydra itself would reject: just no plan
        return None, None
    return jobs, len(jobs)


def expand(overrides: list[str]) -> list[list[str]]:
    """Every job's overrides, as Hydra's basic sweeper spells and orders them."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    return BasicSweeper.split_arguments(parsed, max_batch_size=None)[0]


def sweep_jobs(sweep_dir: Path, now: float | None = None) -> tuple[list[Job], int | None]:
    """Every job once: started ones from their dirs, then the planned ones not started yet;
    and the number of jobs the sweep has (None when unknown)."""
    now = time.time() if now is None else now
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise DropbenchError(f"{sweep_dir} is not a directory; give a sweep dir "
                             f"(multirun/DATE/TIME) or a run dir")
    dirs = [d for d in find_run_dirs([sweep_dir]) if "report" not in d.relative_to(sweep_dir).parts]
    plan, total = planned_jobs(sweep_dir)
    planned = [job_identity(overrides) for overrides in plan or []]
    jobs = once_each([read_job(d, sweep_dir, now) for d in dirs], planned)
    started = [j.overrides for j in jobs]
    for overrides in planned:
        if overrides in started:
            started.remove(overrides)
        else:
            jobs.append(Job("", overrides, "pending"))
    if not jobs:
        raise DropbenchError(f"no jobs under {sweep_dir} yet, and no multirun.yaml naming them; "
                             f"give the dir of a sweep made by `dropbench train -m`")
    if plan is not None:  # a resume may name fewer jobs than the dir holds: count them all
        total = len(jobs)
    elif total is not None:
        total = max(total, len(jobs))
    return jobs, total


def once_each(jobs: list[Job], planned: list[list[str]]) -> list[Job]:
    """The started jobs with each job once: where several dirs hold the same job, the one that
    got furthest is kept and names the others. A sweep may plan one job more than once (a sweep
    over trainer.epochs in numbered dirs): that many dirs are kept."""
    by_job: dict[tuple, list[Job]] = {}
    for job in jobs:
        # an unreadable job's overrides are unknown: it is a job of its own
        identity = ("unreadable", job.name) if job.status == "unreadable" else job.overrides
        by_job.setdefault(tuple(identity), []).append(job)
    kept = []
    for identity, same in by_job.items():
        room = max(1, planned.count(list(identity)))
        same.sort(key=lambda j: j.name)
        same.sort(key=lambda j: progress_rank(j.status, j.epoch), reverse=True)  # stable
        counted, extra = same[:room], same[room:]
        if extra:
            counted[0].duplicates = [j.name for j in extra]
        kept += counted
    return sorted(kept, key=lambda j: j.name)


# --- the table ------------------------------------------------------------------------------
def duration(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "–"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def shown_value(job: Job) -> str:
    value = units.shown(job.metric, job.best_val)
    return value + " (train rows)" if job.val_is_train and job.best_val is not None else value


def varying(jobs: list[Job]) -> list[list[str]]:
    """Each job's overrides without those every job shares: what tells the jobs apart."""
    common = set.intersection(*(set(j.overrides) for j in jobs)) if len(jobs) > 1 else set()
    return [[o for o in j.overrides if o not in common] for j in jobs]


def sweep_eta(jobs: list[Job]) -> float | None:
    """Epochs left times the mean epoch time, shared among the jobs running now; None when
    every job still running looks killed (nothing is training)."""
    started = [j for j in jobs if j.epoch]
    if not started or not any(j.status not in FINAL for j in jobs):
        return None if not started else 0.0
    running = [j for j in jobs if j.status == "running"]
    if running and all(j.presumed_killed for j in running):
        return None
    per_epoch = sum(j.epochs_s for j in started) / sum(j.epoch for j in started)
    known = [j.epochs for j in jobs if j.epochs]
    typical = sum(known) / len(known) if known else None
    left = 0.0
    for j in jobs:
        if j.status in FINAL:
            continue
        epochs = j.epochs or typical
        if epochs is None:
            return None
        left += max(0.0, epochs - j.epoch)
    setups = [j.setup_s for j in jobs if j.setup_s is not None]
    setup = sum(setups) / len(setups) if setups else 0.0
    waiting = sum(j.status in ("pending", "starting") for j in jobs)
    running = sum(j.status == "running" for j in jobs)
    return (left * per_epoch + waiting * setup) / max(1, running)


def progress_line(jobs: list[Job], total: int | None) -> str:
    """"5/12 done (completed 4, failed 1), 2 running, 5 pending; ETA 4m10s"."""
    done = [j for j in jobs if j.status in FINAL]
    counts = {}
    for j in done:
        counts[j.status] = counts.get(j.status, 0) + 1
    detail = ", ".join(f"{s} {n}" for s, n in sorted(counts.items()))
    total = total or len(jobs)
    parts = [f"{len(done)}/{total} done" + (f" ({detail})" if detail else "")]
    running = sum(j.status in ("running", "starting") for j in jobs)
    if running:
        parts.append(f"{running} running")
    pending = total - len(done) - running
    if pending > 0:
        parts.append(f"{pending} pending")
    eta = sweep_eta(jobs)
    text = ", ".join(parts)
    return text + (f"; ETA {duration(eta)}" if eta else "")


def job_line(job: Job, jobs: list[Job], total: int | None) -> str:
    """"job dropout.p=0.5,seed=1 (dropout.p=0.5 seed=1): completed, val acc at best epoch
    93.80 %, 12s | 4/12 done, ..."."""
    shared = set.intersection(*(set(j.overrides) for j in jobs)) if len(jobs) > 1 else set()
    own = [o for o in job.overrides if o not in shared]
    name = f"job {job.name}" + (f" ({' '.join(own)})" if own else "")
    result = job.status + (f" ({job.note})" if job.note else "")
    if job.best_val is not None and job.val_is_train:  # no held-out rows: say what it is
        result += f", {job.metric} on its own training rows at best epoch " \
                  f"{units.shown(job.metric, job.best_val)} (no held-out validation)"
    elif job.best_val is not None:
        result += f", {units.at_best_epoch(job.metric)} {shown_value(job)}"
    return f"{name}: {result}, {duration(job.elapsed_s)} | {progress_line(jobs, total)}"


def render(jobs: list[Job], total: int | None) -> str:
    metric = next((j.metric for j in jobs if j.metric), None)
    header = ["job", "overrides", "status", "epoch", units.at_best_epoch(metric), "elapsed",
              "ETA"]
    rows = [header]
    for job, overrides in zip(jobs, varying(jobs), strict=True):
        epoch = f"{job.epoch}/{job.epochs}" if job.epochs else str(job.epoch or "–")
        note = job.note if len(job.note) <= NOTE_WIDTH else job.note[:NOTE_WIDTH - 1] + "…"
        status = job.status + (f" ({note})" if note else "")
        rows.append([job.name or "–", " ".join(overrides) or "(none)", status,
                     epoch if job.status != "pending" else "–", shown_value(job),
                     duration(job.elapsed_s) if job.status != "pending" else "–",
                     duration(job.eta_s) if job.status == "running" else "–"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1]
             for r in rows]
    return "\n".join([*lines, *duplicate_lines(jobs), "", progress_line(jobs, total)])


def duplicate_lines(jobs: list[Job]) -> list[str]:
    """One line per dir that holds a job already listed, so none is dropped without a word."""
    lines = []
    for job in jobs:
        lines += [f"{other}: the same job as {job.name} (differs only in keys a resume may "
                  f"change), counted once" for other in job.duplicates]
    return ["", *lines] if lines else []


def show(sweep_dir: Path, watch: float | None = None) -> None:
    """Print the table once, or every `watch` seconds until every job has ended."""
    if watch is None:
        print(render(*sweep_jobs(sweep_dir)))
        return
    if watch <= 0:
        raise DropbenchError(f"--watch {watch:g}: give a refresh interval in seconds > 0")
    clear = "\033[H\033[2J" if sys.stdout.isatty() else ""
    try:
        while True:
            jobs, total = sweep_jobs(sweep_dir)
            print(clear + time.strftime("%H:%M:%S ") + str(sweep_dir) + "\n" + render(jobs, total),
                  flush=True)
            finished = all(j.status in FINAL for j in jobs) and len(jobs) >= (total or 0)
            if finished:
                return
            time.sleep(watch)
    except KeyboardInterrupt:
        print()  # Ctrl-C is how one stops watching: not an error
