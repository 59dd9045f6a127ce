"""Every config composes against the schemas; bad values fail at composition or validation."""

import re

import pytest
from hydra.errors import ConfigCompositionException

from dropbench import DropbenchError
from dropbench.config import config_dir, layer_rates, validate
from dropbench.datasets import UCI_FOLDERS

GROUPS = ["dataset", "model", "dropout", "optim", "trainer", "objective"]


def options(group):
    return sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))


@pytest.mark.parametrize("group", GROUPS)
def test_every_option_composes(compose, group):
    assert options(group), f"no configs in conf/{group}"
    for name in options(group):
        cfg = compose([f"{group}={name}"])
        if group != "trainer":
            # conf/dataset/uci.yaml picks one of nine registered datasets by dataset.name
            family = UCI_FOLDERS if (group, name) == ("dataset", "uci") else {name}
            assert cfg[group].name in family


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


# --- every declared range, swept ------------------------------------------------------------
def declared_ranges() -> list:
    """(schema key prefix, composing overrides, field) for every field with a declared bound
    or list bound, in every schema: config.py's groups, each model family, each scheme."""
    from dataclasses import fields

    from dropbench.config import (
        Config,
        DatasetConfig,
        EvalConfig,
        OptimConfig,
        TrainerConfig,
        model_schemas,
    )
    from dropbench.dropout.catalog import declarations

    blocks = [("", [], Config), ("dataset.", [], DatasetConfig), ("optim.", [], OptimConfig),
              ("trainer.", [], TrainerConfig), ("eval.", [], EvalConfig)]
    blocks += [("model.", [f"model={name}"], schema) for name, schema in model_schemas().items()]
    blocks += [("dropout.", [f"dropout={name}"], d.params) for name, d in declarations().items()]
    return [pytest.param(prefix, base, f, id=f"{base[0] + ':' if base else ''}{prefix}{f.name}")
            for prefix, base, schema in blocks for f in fields(schema)
            if "bound" in f.metadata or "each" in f.metadata]


def outside(f) -> str:
    """A value just outside field f's range, written as an override value."""
    if "each" in f.metadata:
        return "[0]"
    bound = f.metadata["bound"]
    if bound.low is not None:
        return str(bound.low if bound.low_open else bound.low - 1)
    return str(bound.high if bound.high_open else bound.high + 1)


@pytest.mark.parametrize("prefix, base, f", declared_ranges())
def test_every_declared_range_is_refused_in_one_line(compose, prefix, base, f):
    key = f"{prefix}{f.name}"
    value = outside(f)
    with pytest.raises(DropbenchError) as refused:
        validate(compose([*base, f"{key}={value}"]))
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"{key}=")
    assert "out of range; use" in message


@pytest.mark.parametrize("override", ["optim.lr=nan", "optim.lr=inf", "optim.clip=-inf",
                                      "dropout.p=false", "dropout.p_input=nan",
                                      "optim.momentum=1", "optim.gamma=0", "seed=4294967296",
                                      "optim.schedule=linear", "model.activation=swish"])
def test_non_finite_and_edge_values_are_refused(compose, override):
    with pytest.raises(DropbenchError, match=override.split("=")[0].replace(".", r"\.")):
        validate(compose([override]))


def test_range_limits_themselves_follow_the_declaration(compose):
    validate(compose(["seed=4294967295", "optim.momentum=0", "optim.gamma=1",
                      "trainer.epochs=1", "optim.clip=0.001", "optim.weight_decay=0"]))


@pytest.mark.parametrize("overrides, fragment", [
    (["model.hidden=[]", "dropout.p=0.8"], "model=mlp has no hidden place for dropout.p=0.8"),
    (["dataset=ptb", "model=lstm", "model.hidden=[20]", "dropout=variational", "dropout.p=0.5"],
     "model=lstm has no hidden place for dropout.p=0.5"),
    (["model=lenet", "model.hidden=[]", "dropout.where=fc", "dropout.p=0.3"],
     "dropout.where=fc puts dropout.p=0.3 on fully connected layers only"),
    (["optim.nesterov=true", "optim.momentum=0"], "optim.nesterov=true needs"),
    (["optim=ntasgd", "optim.momentum=0.9"], "optim=ntasgd is plain averaged SGD"),
    (["optim=adam", "optim.momentum=0.9"], "optim=adam has no momentum setting"),
    (["dataset.path=/tmp"], "dataset.path=/tmp is read by dataset=textdir only"),
    (["model=resnet", "model.blocks=[2,2,2]"], "model.channels="),
    (["dataset=ptb", "model=lstm", "model.tied=true", "model.hidden=[20,30]"],
     "model.tied=true needs"),
    (["model=lstm"], "model=lstm cannot train on dataset=digits"),
    (["dataset=ptb"], "model=mlp cannot train on dataset=ptb"),
    (["dataset=textdir", "model=lstm"], "dataset=textdir needs dataset.path=DIR"),
    (["dataset.augment=true"], "dataset.augment=true is implemented for cifar10 only"),
])
def test_settings_that_would_be_dropped_or_clash_are_refused(compose, overrides, fragment):
    with pytest.raises(DropbenchError, match=re.escape(fragment)):
        validate(compose(overrides))


def test_a_rate_for_no_layer_is_fine_when_zero(compose):
    validate(compose(["model.hidden=[]", "dropout.p=0"]))


def test_refused_run_writes_nothing(cli, tmp_path):
    """The validating callback runs before Hydra creates the run dir and its train.log."""
    r = cli("train", "trainer.progress=false", "seed=-1")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [
        "dropbench: error: seed=-1 is out of range; use an integer in [0, 4294967295] (seeds "
        "numpy, torch and random)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_refused_sweep_names_its_job_and_writes_nothing(cli, tmp_path):
    r = cli("train", "-m", "trainer.progress=false", "dropout.p=0,0.5,1.5", "seed=0,1")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "dropbench: error: sweep job dropout.p=1.5,seed=0: dropout.p=1.5 is out of range; use "
        "a drop probability in [0, 1)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def every_schema() -> list:
    """Every dataclass a composed config is checked against, nested ones included."""
    from dataclasses import fields, is_dataclass

    from dropbench.config import Config, model_schemas, objective_schemas
    from dropbench.dropout.catalog import declarations

    found = []
    todo = [Config, *model_schemas().values(), *objective_schemas().values(),
            *(d.params for d in declarations().values())]
    while todo:
        schema = todo.pop()
        if schema not in found:
            found.append(schema)
            todo += [f.type for f in fields(schema) if is_dataclass(f.type)]
    return found


def test_every_numeric_field_declares_its_range():
    """A new int or float key without a declared range fails here, not in a user's run."""
    from dataclasses import fields

    numeric = ("int", "float", "int | None", "float | None", "list")  # list: list[int]
    unchecked = [f"{schema.__name__}.{f.name}" for schema in every_schema()
                 for f in fields(schema) if getattr(f.type, "__name__", str(f.type)) in numeric
                 and f.type != list[str]  # names (plugins=[...]), not numbers
                 and not {"bound", "each", "rate"} & set(f.metadata)]
    assert unchecked == []


def test_declared_choices_are_the_ones_the_builders_build():
    """config.py lists the choices torch-free; the torch side must build exactly those."""
    import torch
    from omegaconf import OmegaConf

    from dropbench import registry
    from dropbench.config import ACTIVATIONS, SCHEDULES, OptimConfig
    from dropbench.engine.optim import build_optimizer, build_scheduler
    from dropbench.models.mlp import ACTIVATIONS as BUILT

    assert set(ACTIVATIONS) == set(BUILT)
    model = torch.nn.Linear(2, 1)
    for name in registry.OPTIMIZERS:
        cfg = OmegaConf.merge(OmegaConf.structured(OptimConfig), {"name": name})
        optimizer = build_optimizer(cfg, model)
        for schedule in SCHEDULES:
            build_scheduler(OmegaConf.merge(cfg, {"schedule": schedule}), optimizer, 3)
