"""`dropbench diff RUN_A RUN_B`: what differs between two runs, or two sweeps job by job.

For two runs: the config keys that differ, the manifest fields that differ (start/end times
and pids left out: they always differ) and the final metrics side by side. For two sweep
dirs, jobs are paired by their overrides: those shared by every job of a sweep are left out,
so `dropout.p=0` of one sweep meets `dropout.p=0` of the other even when the sweeps differ in
a fixed setting. Reads files only.
"""

import csv
import json
from pathlib import Path

import yaml

from dropbench import rundir, units
from dropbench.errors import DropbenchError
from dropbench.jobdir import job_overrides, override_key
from dropbench.rundir import flatten

VOLATILE = ("started", "ended", "pid")  # manifest fields that differ between any two sessions
# metrics.csv columns that say when an epoch ran, not how it scored: left out of "last"
NOT_SCORES = ("epoch", "lr", "seconds")


def summary_fields(m: str) -> tuple[str, ...]:
    return ("status", "epochs_run", "best_epoch", rundir.BEST_VAL_LOSS, rundir.best_val_key(m),
            rundir.TEST_LOSS, rundir.test_key(m), "wall_s")


def _load(path: Path, reader):
    try:
        return reader(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError, yaml.YAMLError) as e:
        raise DropbenchError(f"{path} is unreadable ({type(e).__name__})") from e


def read_run(run: Path) -> dict:
    def last_row(text: str) -> dict:
        rows = list(csv.DictReader(text.splitlines()))
        return rows[-1] if rows else {}

    manifest = _load(run / rundir.MANIFEST, json.loads) or {}
    summary = _load(run / rundir.SUMMARY, json.loads) or {}
    for record, name in ((manifest, rundir.MANIFEST), (summary, rundir.SUMMARY)):
        if not isinstance(record, dict):
            raise DropbenchError(f"{run / name} is not a JSON object; it was not written by "
                                 f"dropbench, or was damaged")
        rundir.check_format(record, run / name)
    sessions = manifest.pop("sessions", None) or []
    for session in sessions:
        for key in VOLATILE:
            session.pop(key, None)
    config = _load(run / rundir.CONFIG, rundir.parse_yaml)
    return {"config": flatten(rundir.with_implied_keys(config) if isinstance(config, dict)
                              else {}),
            "manifest": flatten(manifest), "sessions": sessions,
            "summary": summary,
            "last": _load(run / rundir.METRICS, last_row) or {},
            "overrides": _load(run / rundir.OVERRIDES, rundir.parse_yaml) or []}


def show(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, ".6g")
    return value if isinstance(value, str) else json.dumps(value)


def differing(a: dict, b: dict, title: str) -> list[str]:
    keys = [k for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]
    if not keys:
        return [f"{title}: the same"]
    return [f"{title} (A -> B):"] + [f"  {k}: {show(a.get(k))} -> {show(b.get(k))}"
                                     for k in keys]


def metrics_table(a: dict, b: dict) -> list[str]:
    m = a["summary"].get("metric") or b["summary"].get("metric") or "acc"
    fields = summary_fields(m)
    # every other score the summaries hold (a regression's test_ll, test_mc_rmse, ...)
    fields += tuple(k for k in sorted(a["summary"].keys() | b["summary"].keys())
                    if k.startswith(rundir.SCORE_PREFIXES) and k not in fields)
    rows = [(f, a["summary"].get(f), b["summary"].get(f)) for f in fields]
    # every score of the last metrics row, in the file's column order: the metrics, and what
    # some runs add (R-Drop's train_kl, max-norm projections, a learnt dropout rate)
    columns = [*a["last"], *(c for c in b["last"] if c not in a["last"])]
    rows += [(f"last {c}", a["last"].get(c), b["last"].get(c)) for c in columns
             if c not in NOT_SCORES]
    shown = [(name, score(name, _number(x)), score(name, _number(y))) for name, x, y in rows
             if x is not None or y is not None]
    width = max([len(n) for n, _, _ in shown] + [6])
    return ["final metrics:", f"  {'':<{width}}  {'A':>14}  {'B':>14}"] + [
        f"  {name:<{width}}  {x:>14}  {y:>14}" for name, x, y in shown]


def score(name: str, value) -> str:
    """A score as the logs and reports show it: an accuracy (a fraction in the files) in
    percent, at full precision, so that two runs' small differences still show."""
    metric = name.rsplit("_", 1)[-1]  # the files name a score {split}_{metric}
    if metric in units.PERCENT and isinstance(value, float):
        return f"{format(100 * value, '.6g')} %"
    return show(value)


def _number(value):
    try:
        return float(value) if isinstance(value, str) else value
    except ValueError:
        return value


def manifest_lines(a: dict, b: dict) -> list[str]:
    """Manifest fields side by side, session by session; a session only one run has is
    named in one line."""
    flat_a, flat_b = dict(a["manifest"]), dict(b["manifest"])
    extra = []
    for i in range(max(len(a["sessions"]), len(b["sessions"]))):
        if i < len(a["sessions"]) and i < len(b["sessions"]):
            flat_a.update(flatten(a["sessions"][i], f"session{i + 1}."))
            flat_b.update(flatten(b["sessions"][i], f"session{i + 1}."))
            continue
        side, s = ("A", a["sessions"][i]) if i < len(a["sessions"]) else ("B", b["sessions"][i])
        extra.append(f"  session{i + 1} only in {side}: {s.get('command')} on {s.get('host')}, "
                     f"epochs {s.get('first_epoch')}-{s.get('last_epoch')}")
    lines = differing(flat_a, flat_b, "manifest") + extra
    if extra and lines[0].endswith("the same"):
        lines[0] = "manifest (A -> B):"
    return lines


def diff_runs(a: Path, b: Path, indent: str = "") -> list[str]:
    ra, rb = read_run(a), read_run(b)
    lines = (differing(ra["config"], rb["config"], "config") + manifest_lines(ra, rb)
             + metrics_table(ra, rb))
    return [indent + line for line in lines]


def job_settings(sweep: Path) -> dict[Path, dict[str, str]]:
    """{job dir: {override key: override}} for every run dir under a sweep dir."""
    from dropbench.rundir import find_run_dirs

    return {run: {override_key(o): o for o in job_overrides(read_run(run)["overrides"])}
            for run in find_run_dirs([sweep]) if run != sweep}


def varying_keys(jobs: dict[Path, dict[str, str]]) -> set[str]:
    keys = set().union(*jobs.values()) if jobs else set()
    return {k for k in keys if len({settings.get(k) for settings in jobs.values()}) > 1}


def pair_jobs(a: Path, b: Path) -> tuple[dict, dict]:
    """Each sweep's jobs keyed by their values of the keys that vary in either sweep."""
    jobs_a, jobs_b = job_settings(a), job_settings(b)
    swept = varying_keys(jobs_a) | varying_keys(jobs_b)
    keyed = []
    for sweep, jobs in ((a, jobs_a), (b, jobs_b)):
        by_key = {}
        for run, settings in jobs.items():
            key = frozenset(o for k, o in settings.items() if k in swept)
            if key in by_key:
                raise DropbenchError(f"{by_key[key]} and {run} in {sweep} are the same job "
                                     f"({', '.join(sorted(key)) or 'no overrides'}); diff "
                                     f"them as two runs")
            by_key[key] = run
        keyed.append(by_key)
    return keyed[0], keyed[1]


def diff(a: Path, b: Path) -> str:
    a, b = Path(a), Path(b)
    for path in (a, b):
        if not path.is_dir():
            raise DropbenchError(f"{path} is not a directory; give two run dirs or two sweep "
                                 f"dirs")
    runs = [rundir.is_run_dir(a), rundir.is_run_dir(b)]
    if all(runs):
        return "\n".join([f"A: {a}", f"B: {b}", *diff_runs(a, b)])
    if any(runs):  # a run against a dir that is none: name the one that is not
        run, other = (a, b) if runs[0] else (b, a)
        if not rundir.find_run_dirs([other]):
            raise DropbenchError(f"{other} is not a run dir (no {rundir.SUMMARY}, "
                                 f"{rundir.METRICS} or {rundir.CONFIG}) and holds none, while "
                                 f"{run} is one; give two run dirs or two sweep dirs")
    jobs_a, jobs_b = pair_jobs(a, b)
    if not jobs_a or not jobs_b:
        empty = a if not jobs_a else b
        raise DropbenchError(f"{empty} holds no runs; give two run dirs or two sweep dirs made "
                             f"by `dropbench train`")
    lines = [f"A: {a}", f"B: {b}"]
    for key in sorted(jobs_a.keys() & jobs_b.keys(), key=sorted):
        lines += ["", f"job {', '.join(sorted(key)) or '(the only one)'}: "
                      f"{jobs_a[key].name} | {jobs_b[key].name}"]
        lines += diff_runs(jobs_a[key], jobs_b[key], indent="  ")
    for side, only in (("A", jobs_a.keys() - jobs_b.keys()), ("B", jobs_b.keys() - jobs_a.keys())):
        for key in sorted(only, key=sorted):
            lines.append(f"only in {side}: {', '.join(sorted(key))}")
    return "\n".join(lines)
