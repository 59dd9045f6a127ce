"""The run directory as a schema: file names, the format version, and which config keys may
change when a run is resumed. The engine writes by it and the report reads by it;
docs/run-dir.md describes the same contract for people.

This module imports neither torch nor the engine, so the report (which must work on run dirs
copied from anywhere) can use it.
"""

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from dropbench.errors import DropbenchError

FORMAT_VERSION = 1  # summary.json and manifest.json carry it as `format_version`

CONFIG = ".hydra/config.yaml"  # the resolved config of the run, written by the engine
OVERRIDES = ".hydra/overrides.yaml"  # the command-line overrides of the job
HYDRA = ".hydra/hydra.yaml"  # Hydra's own settings for the job
METRICS = "metrics.csv"
SUMMARY = "summary.json"
MANIFEST = "manifest.json"
LAST = "checkpoints/last.pt"
BEST = "checkpoints/best.pt"
LOG = "train.log"
LOCK = ".dropbench.lock"  # flock()ed by the process training the dir; holds its host and pid
HEARTBEAT_S = 30.0  # the training process touches LOCK this often (engine/lock.py)
LOGGERS = "loggers.json"  # the tracking sinks' run ids, so a resume logs to the same runs

RUN_FILES = (SUMMARY, METRICS)  # a dir holding either of these (or CONFIG) is a run dir
# What a fresh start (trainer.overwrite=true, or a dir that never finished an epoch) deletes.
RESULT_FILES = (METRICS, SUMMARY, MANIFEST, LAST, BEST, LOGGERS)

STATUSES = ("running", "completed", "failed", "diverged", "interrupted")

# The first metrics.csv columns, in order; <m> is acc or ppl (summary.json `metric`). A run
# with optim.max_norm appends MAX_NORM_COLUMN; dropout modules that learn their rate append one
# column each (e.g. `p.layers.1`).
MAX_NORM_COLUMN = "max_norm_projected"  # weight vectors the constraint projected in the epoch
METRICS_COLUMNS = ("epoch", "lr", "seconds", "train_loss", "train_{m}", "train_eval_loss",
                   "train_eval_{m}", "val_loss", "val_{m}")

# summary.json's scores, <m> being its `metric`: val loss and val <m> at the best epoch (the
# lowest val loss), and the test split's loss and <m> with that epoch's weights. Every score
# key starts with one of SCORE_PREFIXES; the report adds each run's final gap.
BEST_VAL_LOSS = "best_val_loss"
TEST_LOSS = "test_loss"
SCORE_PREFIXES = ("best_val_", "test_")
# summary.json's `val_is` of a run validated on its own training rows (a UCI protocol refit,
# dataset.validation=false): its "val" scores are training scores
VAL_IS_TRAIN = "train"


def best_val_key(metric: str) -> str:
    return f"best_val_{metric}"


def test_key(metric: str) -> str:
    """summary.json's test score of `metric`; each method in its eval_compare too."""
    return f"test_{metric}"


def final_gap_key(metric: str) -> str:
    """The report's gap between the last epoch's val and train_eval `metric` (or loss)."""
    return f"final_gap_{metric}"


def objective(summary: dict):
    """What a Hydra sweeper optimises: the run's best validation metric, or None."""
    return summary.get(best_val_key(summary.get("metric")))


@dataclass(frozen=True)
class ResumeRule:
    """A config key (or every key under it) whose value may differ between a run and its
    resume."""

    key: str
    why: str
    # A key of the run's config whose values make a change of `key` unsafe after all.
    unless_key: str | None = None
    unless_values: tuple = ()
    # Whether runs that differ in `key` end with different results (trainer.epochs: a longer
    # run), so that a report still tells them apart; the other keys only say how a run was
    # carried out.
    changes_results: bool = False


# Keys that cannot change what a run computes (or, for trainer.epochs, only extend it).
# Every other key must be equal, or the resume is refused. The same list says what a sweep
# job is (is_part_of_a_job: every other key) and which keys group runs in a report
# (tells_results_apart).
RESUME_MAY_CHANGE = (
    ResumeRule("trainer.resume", "how this invocation starts, not what it trains"),
    ResumeRule("trainer.overwrite", "how this invocation starts, not what it trains"),
    ResumeRule("trainer.progress", "display only"),
    ResumeRule("logger", "where the epochs' rows are sent besides the run dir"),
    ResumeRule("trainer.threads", "CPU threads: the same arithmetic, recorded per session in "
                                  "manifest.json"),
    ResumeRule("device", "where it runs, recorded per session in manifest.json"),
    ResumeRule("data_dir", "where the data lives; the loaded data must hash the same as the "
                           "run's (manifest.json `data_sha256`)"),
    ResumeRule("trainer.epochs", "extends (or ends) the run; the epochs already run are the "
                                 "same as in a run of the new length",
               unless_key="optim.schedule", unless_values=("cosine",), changes_results=True),
)


# Config keys added after run dirs were first written, with the value their absence meant: a
# run dir written before a key existed reads as if it held that value (a resume compares it,
# the report groups it, diff shows it), so it still resumes and sits with the runs like it.
# A key added with a null default needs no entry: absent and null read the same on a resume.
IMPLIED_WHEN_ABSENT = {
    "objective.name": "ce",
    "trainer.eval_every": 1,
    # schedules moved per epoch then; a constant one has no unit, so it reads as today's default
    "dropout.schedule_unit": lambda config: (
        "step" if (config.get("dropout") or {}).get("schedule", "constant") == "constant"
        else "epoch"),
}


def with_implied_keys(config: dict) -> dict:
    """A run's saved config (nested plain data) with the keys it predates filled in."""
    for key, value in IMPLIED_WHEN_ABSENT.items():
        value = value(config) if callable(value) else value
        node, *parents = config, *key.split(".")[:-1]
        for part in parents:
            node = node.setdefault(part, {}) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.setdefault(key.rsplit(".", 1)[-1], value)
    return config


def resume_rule(key: str) -> ResumeRule | None:
    """The rule that lets the dotted config key `key` differ on a resume: its own, or the one
    of a key above it (`logger` covers `logger.wandb.mode`); None when it must stay equal."""
    return next((rule for rule in RESUME_MAY_CHANGE
                 if key == rule.key or key.startswith(rule.key + ".")), None)


def is_part_of_a_job(key: str) -> bool:
    """Whether a config key takes part in what a job trains. The keys a resume may change do
    not: a sweep job is named and found without them (dropbench/jobdir.py), so running a sweep
    again with other threads, loggers or a larger trainer.epochs finds its jobs."""
    return resume_rule(key) is None


def tells_results_apart(key: str) -> bool:
    """Whether runs that differ in `key` may end with different results: every key but those
    a resume may change without changing the results (threads, device, loggers, ...)."""
    rule = resume_rule(key)
    return rule is None or rule.changes_results


def flatten(mapping: dict, prefix: str = "", lists_as_text: bool = False) -> dict:
    """{"dropout": {"p": 0.5}} -> {"dropout.p": 0.5}; empty dicts vanish. Lists stay lists, or
    with `lists_as_text` become one string such as "[0.5, 0.2]" (hashable, for grouping runs
    and for trackers that take scalars only)."""
    flat = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + ".", lists_as_text))
        elif lists_as_text and isinstance(value, (list, tuple)):
            flat[name] = "[" + ", ".join(format_value(v) for v in value) + "]"
        else:
            flat[name] = value
    return flat


def format_value(value) -> str:
    """One spelling per value: 0, 0.0 and 0.00 all read "0"; used for labels and grouping."""
    if isinstance(value, bool) or value is None:
        return str(value).lower() if value is not None else "null"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and math.isnan(value):
            return "n/a"
        return format(value, "g")
    return str(value)


def progress_rank(status, epochs_run) -> tuple:
    """Which of several dirs of one job got furthest, largest first: completed, then running,
    then the most epochs. Status, the report and a resume's dir lookup all keep that one."""
    epochs = epochs_run if isinstance(epochs_run, (int, float)) else 0  # from a file
    return status == "completed", status == "running", epochs


def is_run_dir(path: Path) -> bool:
    return any((path / f).is_file() for f in (*RUN_FILES, CONFIG))


class RunDirRefused(DropbenchError):
    """The run dir cannot be used as asked (held by another process, a resume that would
    change the run, a checkpoint that does not fit): refused before anything in it changed."""


# Dirs that never hold runs: checkpoints, and the loggers' folders (which keep copies of
# summary.json).
NOT_RUNS = {"checkpoints", "tensorboard", "mlartifacts", "mlruns", "wandb"}


def find_run_dirs(paths) -> list[Path]:
    """Every dir under `paths` that looks like a run (has a run file or a Hydra config)."""
    found = []
    for path in map(Path, paths):
        if not path.exists():
            raise DropbenchError(f"{path} does not exist; give a run dir or a sweep dir")
        for root, dirs, files in os.walk(path):
            # Hidden dirs (.hydra) and NOT_RUNS are never descended into.
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in NOT_RUNS)
            root = Path(root)
            if any(f in files for f in RUN_FILES) or (root / CONFIG).is_file():
                found.append(root)
    return sorted(set(found))


# libyaml's parser where PyYAML was built with it: about 10x faster on a run's config.yaml,
# which `dropbench status` and the sweep progress line read for every job.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str):
    """yaml.safe_load: plain data only; interpolations such as ${oc.env:...} stay strings."""
    return yaml.load(text, Loader=_YAML_LOADER)


class NewerFormat(RunDirRefused):
    """A summary.json or manifest.json written by a newer dropbench than this one."""


def check_format(record, path) -> None:
    """Refuse, in one line, a record whose `format_version` is newer than this dropbench
    reads: resuming or rewriting it would silently drop what the newer format added."""
    version = record.get("format_version", 0) if isinstance(record, dict) else 0
    if isinstance(version, bool) or not isinstance(version, int) or version > FORMAT_VERSION:
        raise NewerFormat(f"{path} has format_version {version!r}, newer than the "
                          f"{FORMAT_VERSION} this dropbench reads; upgrade dropbench "
                          f"(pip install -U dropbench) to read it")


# What dropbench writes into a run dir; everything else there is the user's and is never
# deleted. Hidden `.NAME.*.tmp` files are the atomic writer's leftovers.
OWN_FILES = {CONFIG, OVERRIDES, HYDRA, LOG, LOCK, *RESULT_FILES}
OWN_DIRS = {".hydra", "checkpoints", *NOT_RUNS}


def foreign_entries(run_dir: Path) -> list[str]:
    """Entries of `run_dir` (and of its .hydra/ and checkpoints/) dropbench did not write."""
    found = []
    for sub in ("", ".hydra", "checkpoints"):
        folder = run_dir / sub if sub else run_dir
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir()):
            name = f"{sub}/{entry.name}" if sub else entry.name
            own = name in OWN_FILES or (not sub and name in OWN_DIRS and entry.is_dir())
            if not own and not (entry.name.startswith(".") and entry.name.endswith(".tmp")):
                found.append(name)
    return found


def is_dropbench_run(run_dir: Path) -> bool:
    """Whether dropbench trained here: a training process signed the lock file, or a
    summary.json records a status."""
    try:
        if (run_dir / LOCK).stat().st_size > 0:
            return True
    except OSError:
        pass
    try:
        summary = json.loads((run_dir / SUMMARY).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(summary, dict) and "status" in summary


def local_flock_holder(inode: int) -> int | None:
    """The pid holding an flock on this inode, from Linux's /proc/locks (None elsewhere)."""
    try:
        table = Path("/proc/locks").read_text()
    except OSError:
        return None
    for line in table.splitlines():
        parts = line.split()  # 1: FLOCK ADVISORY WRITE <pid> <major>:<minor>:<inode> 0 EOF
        if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5].rsplit(":", 1)[-1] == str(inode):
            return int(parts[4])
    return None
