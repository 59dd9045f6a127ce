"""A job is what it trains: one declaration (rundir.RESUME_MAY_CHANGE) says which keys never make
a new sweep job, and the report counts a job found in two dirs of one sweep once."""

import yaml

from dropbench import rundir
from dropbench.jobdir import job_overrides
from dropbench.report.collect import DUPLICATE, collect, varying_settings
from test_report import make_run


def test_every_key_a_resume_may_change_is_no_part_of_a_job():
    for rule in rundir.RESUME_MAY_CHANGE:
        assert job_overrides([f"{rule.key}=1", f"++{rule.key}.below=2", "seed=3"]) == ["seed=3"]
    assert job_overrides(["logger=[csv,mlflow]", "+logger/tensorboard=tensorboard",
                          "trainer.patience=2", "dropout_defaults@dropout=lenet_standard"]) == [
        "dropout_defaults@dropout=lenet_standard", "trainer.patience=2"]
    # threads only say how a run was carried out; a longer run ends with other results
    assert not rundir.tells_results_apart("trainer.threads")
    assert rundir.tells_results_apart("trainer.epochs")
    assert rundir.tells_results_apart("trainer.patience")


def with_config(run_dir, **changes):
    """Set flat keys (`trainer.threads`) in a made run's config."""
    path = run_dir / rundir.CONFIG
    config = yaml.safe_load(path.read_text())
    for key, value in changes.items():
        *parents, leaf = key.split(".")
        node = config
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    path.write_text(yaml.safe_dump(config))


def test_report_counts_a_job_in_two_dirs_once_and_lists_the_other(tmp_path):
    sweep = tmp_path / "sweep"
    kept = make_run(sweep / "dropout.p=0.5,seed=0,trainer.threads=1", test_acc=0.90)
    with_config(kept, **{"trainer.threads": 1})
    again = make_run(sweep / "dropout.p=0.5,seed=0,trainer.threads=2", test_acc=0.90, done=2,
                     status="running")
    with_config(again, **{"trainer.threads": 2, "trainer.resume": True})
    make_run(sweep / "dropout.p=0.5,seed=1", seed=1, test_acc=0.94)
    longer = make_run(sweep / "dropout.p=0.5,seed=1,trainer.epochs=6", seed=1, epochs=6)
    col = collect([sweep])
    assert sorted(col.runs["run"]) == ["dropout.p=0.5,seed=0,trainer.threads=1",
                                       "dropout.p=0.5,seed=1",
                                       "dropout.p=0.5,seed=1,trainer.epochs=6"]
    assert col.skipped == [(again.name, f"the same job as {kept.name} (its config differs only "
                            f"in trainer.resume, trainer.threads); counted once",
                            DUPLICATE)]
    assert longer.name in set(col.runs["run"])  # a longer run is another result
    assert varying_settings(col.runs, col.config_columns) == ["trainer.epochs"]


def test_the_same_job_in_two_sweeps_counts_in_each(tmp_path):
    for sweep in ("a", "b"):
        make_run(tmp_path / sweep / "dropout.p=0.5,seed=0")
    col = collect([tmp_path / "a", tmp_path / "b"])
    assert sorted(col.runs["run"]) == ["a/dropout.p=0.5,seed=0", "b/dropout.p=0.5,seed=0"]
    assert col.skipped == []
