"""What a new invocation may do with a run dir that already holds a run.

`plan_start` only reads: it returns "fresh", "resume" or "done", or refuses in one line.
A resume must compose the same config as the run's own (`.hydra/config.yaml`), apart from
the keys in rundir.RESUME_MAY_CHANGE; otherwise the run dir would describe epochs that were
trained under other settings.
"""

import json
from pathlib import Path

import yaml
from omegaconf import OmegaConf

from dropbench import rundir
from dropbench.rundir import RunDirRefused, flatten

ABSENT = "(absent)"


def resolved(cfg) -> dict:
    """The composed config as plain data, every interpolation resolved."""
    return OmegaConf.to_container(cfg, resolve=True)


def read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def saved_config(run_dir: Path) -> dict:
    path = run_dir / rundir.CONFIG
    try:
        config = rundir.parse_yaml(path.read_text())
    except FileNotFoundError:
        raise RunDirRefused(f"{run_dir} holds a checkpoint but no {rundir.CONFIG}, so a resume "
                            f"cannot check its settings; start over with "
                            f"trainer.overwrite=true") from None
    except (OSError, yaml.YAMLError) as e:
        raise RunDirRefused(f"{path} is unreadable ({type(e).__name__}); start over with "
                            f"trainer.overwrite=true") from e
    if not isinstance(config, dict):
        raise RunDirRefused(f"{path} is not a mapping; start over with trainer.overwrite=true")
    return rundir.with_implied_keys(config)


def show(value) -> str:
    return ABSENT if value is ABSENT else json.dumps(value, default=str)


def changed_keys(old: dict, new: dict) -> list[str]:
    """'key: old -> new' for each key that differs and may not differ on a resume."""
    old_flat, new_flat = flatten(old), flatten(new)
    changes = []
    for key in sorted(old_flat.keys() | new_flat.keys()):
        before, after = old_flat.get(key, ABSENT), new_flat.get(key, ABSENT)
        if before == after:
            continue
        rule = rundir.resume_rule(key)
        if rule is None:
            changes.append(f"{key}: {show(before)} -> {show(after)}")
        elif rule.unless_key and old_flat.get(rule.unless_key) in rule.unless_values:
            changes.append(f"{key}: {show(before)} -> {show(after)} (not with "
                           f"{rule.unless_key}={old_flat[rule.unless_key]})")
    return changes


def has_trained(run_dir: Path, summary: dict | None) -> bool:
    """At least one epoch finished: a metrics row, or a checkpoint that a summary does not
    date to before the first epoch (begin() writes last.pt at epoch 0)."""
    if (run_dir / rundir.METRICS).exists():
        return True
    return (run_dir / rundir.LAST).exists() and (summary or {}).get("epochs_run") != 0


def read_record(path: Path) -> dict | None:
    """summary.json or manifest.json as read_json reads it, refused when a newer dropbench
    wrote it."""
    record = read_json(path)
    if record is not None:
        rundir.check_format(record, path)
    return record


def check_not_foreign(run_dir: Path) -> None:
    """Refuse a dir that holds files of its own and no dropbench run: nothing in it is
    dropbench's to resume or delete."""
    foreign = rundir.foreign_entries(run_dir)
    if foreign and not rundir.is_dropbench_run(run_dir):
        log_file = run_dir / rundir.LOG  # Hydra opened it for this job: leave no trace
        if log_file.is_file() and log_file.stat().st_size == 0:
            log_file.unlink()
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise RunDirRefused(f"{run_dir} holds files dropbench did not write ({shown}) and no "
                            f"dropbench run; train in a new or empty dir (another "
                            f"hydra.run.dir); nothing there was changed")


def plan_start(run_dir: Path, cfg) -> str:
    """'fresh' (start over: nothing trained yet, or trainer.overwrite=true), 'resume'
    (continue from checkpoints/last.pt) or 'done' (a completed run already as long as asked)."""
    if cfg.trainer.resume and cfg.trainer.overwrite:
        raise RunDirRefused("trainer.resume=true and trainer.overwrite=true ask for opposite "
                            "things (continue the run, or delete it and start over); pass "
                            "only one of them")
    check_not_foreign(run_dir)
    summary = read_record(run_dir / rundir.SUMMARY)
    read_record(run_dir / rundir.MANIFEST)
    status = summary.get("status") if summary else None
    trained = has_trained(run_dir, summary)
    if cfg.trainer.overwrite or not (trained or status):
        return "fresh"
    if not cfg.trainer.resume:
        raise RunDirRefused(f"{run_dir} already holds a run ({status or 'unfinished'}); resume "
                            f"it with trainer.resume=true, replace it with "
                            f"trainer.overwrite=true, or pick another hydra.run.dir")
    if not trained:
        return "fresh"  # e.g. failed before its first epoch: nothing to keep consistent
    if not (run_dir / rundir.LAST).exists():
        raise RunDirRefused(f"{run_dir} has metrics but no {rundir.LAST} to continue from; "
                            f"start it over with trainer.overwrite=true (instead of "
                            f"trainer.resume=true), or train in another hydra.run.dir")
    changes = changed_keys(saved_config(run_dir), resolved(cfg))
    if changes:
        raise RunDirRefused(
            f"cannot resume {run_dir} with a different config ({'; '.join(changes)}); resume "
            f"with the run's own settings, or train elsewhere (another hydra.run.dir, or "
            f"trainer.overwrite=true to replace it)")
    if status == "completed" and (summary.get("stopped_early")
                                  or summary.get("epochs_run", 0) >= cfg.trainer.epochs):
        return "done"
    return "resume"


def check_same_data(run_dir: Path, fingerprint: dict) -> None:
    """Refuse a resume whose data differs from the data the run trained on."""
    manifest = read_json(run_dir / rundir.MANIFEST) or {}
    before = manifest.get("data")
    if not isinstance(before, dict):
        return  # a run from before manifests: nothing recorded to compare with
    key = "sha256" if before.get("device_type") == fingerprint["device_type"] else "int_sha256"
    if before.get(key) != fingerprint[key]:
        raise RunDirRefused(f"the data loaded now differs from the data {run_dir} trained on "
                            f"(manifest.json data.{key}); point data_dir at the same files")

