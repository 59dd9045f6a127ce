"""Sweep job directories named by what the job trains, not by its number in the sweep.

`hydra.sweep.subdir` is `${dropbench_job_dir:${hydra.overrides.task},${hydra.sweep.dir}}`:
the job's overrides, sorted, joined by commas (`dropout.p=0.5,seed=1`), without those whose
key a resume may change (rundir.RESUME_MAY_CHANGE: threads, loggers, device, data_dir,
trainer.epochs, ...). Running a sweep again in the same sweep dir, with its lists in any order
or extended, or with other threads or loggers, therefore finds each earlier job in its own
directory; only new combinations start new ones.

An override whose value holds a character unsafe in a path (`/`, a space, quotes) is shown by
the value's last path component and a short hash of the whole value
(`dataset.path=x-<8 hex digits>`); a name longer than MAX_NAME is cut and ends in a hash of
all the overrides. A sweep dir made by an earlier naming (job dirs named with `trainer.threads=...`,
or `job-<hash>`) is searched by the overrides its jobs recorded, so a resume finds those too.
"""

import functools
import hashlib
import json
import re
from pathlib import Path

import yaml

from dropbench import rundir

RESOLVER = "dropbench_job_dir"
MAX_NAME = 120
SAFE_NAME = re.compile(r"[A-Za-z0-9_.,=+\-\[\]:@%~]+")
UNSAFE_RUN = re.compile(r"[^A-Za-z0-9_.\-]+")
MAX_TAIL = 40  # characters of a path value's last component kept in a name
VALUE_HASH = 8  # hex digits of a value's hash in a name
NAME_HASH = 16  # hex digits of the overrides' hash ending a shortened name
NO_OVERRIDES = "defaults"  # a job with no overrides that count


@functools.lru_cache(maxsize=1)
def _parser():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()


@functools.lru_cache(maxsize=16384)  # a status refresh parses every job's overrides
def _parsed(override: str):
    return _parser().parse_override(override)


def override_key(override: str) -> str:
    """The key or config group an override sets, without +, ++ or ~ (`trainer.threads`)."""
    return _parsed(override).key_or_group


def config_path(override: str) -> str:
    """The dotted config key an override writes to: its package for a group placed with @,
    else its key with group paths dotted (`logger/tb` -> `logger.tb`)."""
    parsed = _parsed(override)
    return parsed.package or parsed.key_or_group.replace("/", ".")


def job_overrides(overrides) -> list[str]:
    """The overrides that make the job what it is, each spelled one way (canonical), sorted:
    every one whose key is part of a job (rundir.is_part_of_a_job)."""
    return sorted(canonical(o) for o in map(str, overrides)
                  if rundir.is_part_of_a_job(config_path(o)))


def canonical(override: str) -> str:
    """One spelling of an override whose value is a string with characters Hydra may quote or
    escape: `p=/a\\ b`, `p='/a b'` and `p="/a b"` all read `p=/a b` (or `p='...'` where the
    bare value would parse otherwise). Hydra's sweeper keeps each spelling as typed, so a
    resume typed otherwise is still the same job."""
    if SAFE_NAME.fullmatch(override) or "=" not in override:
        return override
    parsed = _parsed(override)
    value = parsed.value()
    if not isinstance(value, str):
        return override
    key = parsed.get_key_element()
    for spelling in (f"{key}={value}", f"{key}='{value}'"):
        if same_value(spelling, value):
            return spelling
    return override  # no simpler spelling of the same value: kept as given


def same_value(spelling: str, value: str) -> bool:
    from hydra.errors import HydraException

    try:
        return _parsed(spelling).value() == value
    except HydraException:
        return False


def short_hash(text: str, digits: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:digits]


def readable(override: str) -> str:
    """An override as part of a dir name: itself when every character is safe in a path, else
    `key=<last component of the value>-<hash of the value>`."""
    if SAFE_NAME.fullmatch(override):
        return override
    key, equals, text = override.partition("=")
    key = key if SAFE_NAME.fullmatch(key) else UNSAFE_RUN.sub("_", key)
    value = _parsed(override).value() if equals else text
    # the value itself, not its spelling: `a\ b`, 'a b' and "a b" are one path
    value = value if isinstance(value, str) else text
    tail = value.rstrip("/").rsplit("/", 1)[-1]
    tail = UNSAFE_RUN.sub("_", tail).strip("_.")[:MAX_TAIL] or "value"
    return f"{key}{equals}{tail}-{short_hash(value, VALUE_HASH)}"


def job_dir_name(overrides, sweep_dir=None) -> str:
    """The job's dir name under the sweep dir; with `sweep_dir`, a dir an earlier naming gave
    the same job is reused (see found_by_overrides)."""
    kept = job_overrides(overrides)
    if not kept:
        name = NO_OVERRIDES
    else:
        name = ",".join(map(readable, kept))
        if len(name) > MAX_NAME:
            cut = name[:MAX_NAME - NAME_HASH - 1].rstrip(",")
            name = f"{cut}-{short_hash(chr(10).join(kept), NAME_HASH)}"
    if sweep_dir is None or (Path(str(sweep_dir)) / name).is_dir():
        return name
    return found_by_overrides(str(sweep_dir)).get(tuple(kept), name)


@functools.lru_cache(maxsize=8)
def found_by_overrides(sweep_dir: str) -> dict[tuple, str]:
    """{job overrides: dir name} of the job dirs already in `sweep_dir`, read once per process
    from each dir's .hydra/overrides.yaml. Where two dirs hold the same job (a sweep resumed
    under an earlier naming made a second one), the one that got furthest is named
    (rundir.progress_rank), as status and the report count it."""
    from hydra.errors import HydraException  # not at import: `dropbench list` starts faster

    found: dict[tuple, tuple[tuple, str]] = {}  # job -> (its progress, dir name)
    root = Path(sweep_dir)
    if not root.is_dir():
        return {}
    for job in sorted(p for p in root.iterdir() if (p / rundir.OVERRIDES).is_file()):
        try:
            recorded = rundir.parse_yaml((job / rundir.OVERRIDES).read_text())
            identity = tuple(job_overrides(recorded if isinstance(recorded, list) else []))
        except (OSError, yaml.YAMLError, HydraException):
            continue  # an unreadable record names no job to resume; its dir stays as it is
        progress = progress_of(job)
        if identity not in found or progress > found[identity][0]:  # first name among equals
            found[identity] = progress, job.name
    return {identity: name for identity, (_, name) in found.items()}


def progress_of(job: Path) -> tuple:
    try:
        summary = json.loads((job / rundir.SUMMARY).read_text())
    except (OSError, ValueError):
        summary = None
    if not isinstance(summary, dict):
        return rundir.progress_rank(None, 0)
    return rundir.progress_rank(summary.get("status"), summary.get("epochs_run"))


def register() -> None:
    """Make the resolver known to OmegaConf; sweep workers (joblib, submitit) call this too,
    by importing dropbench.cli to unpickle the task function."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, job_dir_name)
