"""Every config composes against the schemas; bad values fail at composition or validation."""

import pytest
from hydra.errors import ConfigCompositionException

from dropbench import DropbenchError
from dropbench.config import config_dir, layer_rates, validate

GROUPS = ["dataset", "model", "dropout", "optim", "trainer"]


def options(group):
    return sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))


@pytest.mark.parametrize("group", GROUPS)
def test_every_option_composes(compose, group):
    assert options(group), f"no configs in conf/{group}"
    for name in options(group):
        cfg = compose([f"{group}={name}"])
        if group != "trainer":
            assert cfg[group].name == name or group == "dataset" and cfg.dataset.name == name


@pytest.mark.parametrize("preset", options("experiment"))
def test_every_experiment_composes_and_validates(compose, preset):
    cfg = compose([f"+experiment={preset}"])
    assert cfg.trainer.epochs >= 1
    validate(cfg)  # every preset rate lands on a place its model has and its scheme serves


def test_defaults_are_the_offline_mlp(compose):
    cfg = compose()
    assert (cfg.dataset.name, cfg.model.name, cfg.dropout.name) == ("digits", "mlp", "standard")
    assert cfg.device == "auto" and cfg.seed == 0
    validate(cfg)


def test_data_dir_follows_environment(compose, monkeypatch, tmp_path):
    monkeypatch.setenv("DROPBENCH_DATA", str(tmp_path))
    assert compose().data_dir == str(tmp_path)
    monkeypatch.delenv("DROPBENCH_DATA")
    assert compose().data_dir == "~/.cache/dropbench"


def test_wrong_type_fails_at_composition(compose):
    with pytest.raises(ConfigCompositionException):
        compose(["trainer.epochs=abc"])
    with pytest.raises(ConfigCompositionException):
        compose(["dropout.nonexistent=1"])


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("dropout.p=1.5", "dropout.p=1.5"),
        ("dropout.p=-0.1", "dropout.p=-0.1"),
        ("dropout.p_input=1.0", "dropout.p_input"),
        ("trainer.epochs=-1", "trainer.epochs"),
        ("trainer.batch_size=0", "trainer.batch_size"),
        ("optim.lr=0", "optim.lr"),
        ("device=tpu", "device"),
        ("dataset.train_subset=0", "dataset.train_subset"),
    ],
)
def test_validate_rejects_out_of_range(compose, override, fragment):
    with pytest.raises(DropbenchError, match=fragment.replace(".", r"\.")):
        validate(compose([override]))


def test_layer_rates_expand_and_check():
    assert layer_rates(0.5, 3) == [0.5, 0.5, 0.5]
    assert layer_rates([0.1, 0.2], 2) == [0.1, 0.2]
    with pytest.raises(DropbenchError, match="2 rates but the model has 3"):
        layer_rates([0.1, 0.2], 3)
    with pytest.raises(DropbenchError, match="out of range"):
        layer_rates([0.1, 1.0], 2)
