"""Sweep job directories named by what the job is, not by its number in the sweep.

`hydra.sweep.subdir` is `${dropbench_job_dir:${hydra.overrides.task}}`: the job's overrides,
sorted, joined by commas (`dropout.p=0.5,seed=1`), without the ones that do not make a
different job (rundir.NOT_PART_OF_A_JOB, e.g. trainer.resume). Running a sweep again in the
same sweep dir, with its lists in any order or extended, therefore finds each earlier job in
its own directory; only the new combinations start new ones. A name that would be long or
hold a character unsafe in a path becomes `job-<sha256 prefix of the overrides>`.
"""

import hashlib
import re

from dropbench.rundir import NOT_PART_OF_A_JOB

RESOLVER = "dropbench_job_dir"
MAX_NAME = 120
SAFE_NAME = re.compile(r"[A-Za-z0-9_.,=+\-\[\]:@%~]+")
NO_OVERRIDES = "defaults"  # a job with no overrides that count


def override_key(override: str) -> str:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_override(override).key_or_group


def job_overrides(overrides) -> list[str]:
    """The overrides that make the job what it is, sorted."""
    return sorted(o for o in map(str, overrides) if override_key(o) not in NOT_PART_OF_A_JOB)


def job_dir_name(overrides) -> str:
    kept = job_overrides(overrides)
    name = ",".join(kept)
    if not name:
        return NO_OVERRIDES
    if len(name) > MAX_NAME or not SAFE_NAME.fullmatch(name) or name.startswith("."):
        return "job-" + hashlib.sha256("\n".join(kept).encode()).hexdigest()[:16]
    return name


def register() -> None:
    """Make the resolver known to OmegaConf; sweep workers (joblib, submitit) call this too,
    by importing dropbench.cli to unpickle the task function."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, job_dir_name)
