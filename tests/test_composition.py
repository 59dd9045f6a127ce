"""SweepComposer (dropbench/composition.py): a job config made from an earlier job of the same
shape is the config Hydra composes for it, hydra node included; a job of another shape is
composed by Hydra."""

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from omegaconf import OmegaConf

from dropbench.composition import SweepComposer
from dropbench.config import config_dir, register_schemas


@pytest.fixture
def loader():
    register_schemas()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        yield GlobalHydra.instance().config_loader()


class Counted:
    """Hydra's own load_sweep_config, counting its calls."""

    def __init__(self, loader):
        self.full, self.calls = loader.load_sweep_config, 0
        loader.load_sweep_config = self

    def __call__(self, master, overrides):
        self.calls += 1
        return self.full(master, overrides)


def master_of(loader, overrides):
    return loader.load_configuration("config", overrides, RunMode.MULTIRUN)


def as_text(config) -> str:
    return OmegaConf.to_yaml(config, resolve=False)


PROTOCOL = ["+experiment=gal_uci", "dataset.name=yacht", "hydra.sweep.dir=/tmp/x"]


def protocol_job(split: int, p: float, tau: float) -> list[str]:
    return ["+experiment=gal_uci", f"dataset.split={split}", "dataset.validation=true",
            f"dropout.p={p}", f"dropout.p_input={p}", f"dataset.tau={tau}",
            "trainer.resume=true", f"hydra.sweep.subdir='split{split:02d}/p={p},tau={tau}'"]


@pytest.mark.parametrize("jobs", [
    [protocol_job(0, 0.05, 0.5), protocol_job(3, 0.1, 2.0), protocol_job(19, 0.005, 0.25)],
    # lists, a key set twice (the last one counts), and a value given as null
    [["model.hidden=[8,8]", "seed=0", "seed=1", "optim.max_norm=null"],
     ["model.hidden=[16]", "seed=5", "seed=2", "optim.max_norm=3.0"]],
])
def test_a_job_of_a_known_shape_is_the_config_hydra_composes(loader, jobs):
    master = master_of(loader, PROTOCOL)
    counted = Counted(loader)
    composer = SweepComposer(loader)
    made = [composer(master, job) for job in jobs]
    assert counted.calls == 1  # the first job only: the others are copies with their values
    for job, config in zip(jobs, made, strict=True):
        assert as_text(config) == as_text(counted.full(master, job))
    assert as_text(made[0]) != as_text(made[1])


def test_a_job_of_another_shape_is_composed_in_full(loader):
    master = master_of(loader, ["hydra.sweep.dir=/tmp/x"])
    counted = Counted(loader)
    composer = SweepComposer(loader)
    jobs = [["model=mlp", "seed=0"], ["model=lenet", "seed=0"], ["+trainer.extra=1", "seed=1"],
            ["model=lenet", "seed=4"]]
    made = [composer(master, job) for job in jobs]
    assert counted.calls == 3  # a config group's choice and an added key change the shape
    for job, config in zip(jobs, made, strict=True):
        assert as_text(config) == as_text(counted.full(master, job))
    assert made[1].model.name != made[0].model.name


def test_copies_do_not_share_state(loader):
    """A launcher writes each job's hydra.job.num and output dir into its config: the kept
    config and the jobs made from it must not see each other's."""
    master = master_of(loader, ["hydra.sweep.dir=/tmp/x"])
    composer = SweepComposer(loader)
    first, second = composer(master, ["seed=0"]), composer(master, ["seed=1"])
    first.seed = 7
    assert composer(master, ["seed=2"]).seed == 2 and second.seed == 1


def test_a_bad_value_gets_hydras_own_error(loader):
    master = master_of(loader, ["hydra.sweep.dir=/tmp/x"])
    full = loader.load_sweep_config
    composer = SweepComposer(loader)
    composer(master, ["seed=1"])
    with pytest.raises(Exception) as composed:
        composer(master, ["seed=abc"])
    with pytest.raises(Exception) as by_hydra:
        full(master, ["seed=abc"])
    assert str(composed.value) == str(by_hydra.value)
