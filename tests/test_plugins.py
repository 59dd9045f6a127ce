"""Plugins: schemes, models and kinds of place registered from outside dropbench, found through
the `dropbench.plugins` entry-point group or named in `plugins=[...]`, and skipped in one
warning line when broken (import error, bad declaration, a name already taken)."""

import json
import logging
import os
import sys
import textwrap
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from dropbench import DropbenchError, registry
from dropbench.dropout.catalog import declaration, scheme_config
from dropbench.dropout.plan import check_dropout

# A scheme that serves dense places with inverted dropout, and its torch side.
TOY_SCHEME = '''
from dataclasses import dataclass
from dropbench.dropout.catalog import scheme
from dropbench.dropout.params import UnitRates
from dropbench.ranges import at_least

@scheme("toy", "inverted dropout from a plugin", ("dense",), builder="toy_layers:FACTORIES")
@dataclass
class ToyParams(UnitRates):
    strength: int = at_least(1, 1, "a key of its own")
'''
TOY_LAYERS = '''
from dropbench.dropout.base import Factories
from dropbench.dropout.standard import BernoulliDropout
FACTORIES = {"toy": Factories(activation=lambda p, cfg: BernoulliDropout(p))}
'''
TOY_YAML = """\
# A toy scheme from a plugin
defaults:
  - base_dropout_toy
  - _self_
name: toy
p: 0.3
"""
# A new kind of place, a model that offers it and a scheme that serves it.
BRANCH_PLUGIN = '''
from dataclasses import dataclass
from dropbench.config import ModelConfig
from dropbench.dropout.catalog import Declaration
from dropbench.dropout.params import DropoutParams, Place
from dropbench.ranges import rate
from dropbench.registry import register_model, register_place_kind, register_scheme

register_place_kind("twig", "a twig of the model, dropped whole per example")

@dataclass
class PruneParams(DropoutParams):
    p_twig: float = rate(0.1, "the twigs")

register_scheme(Declaration("prune", "drops whole twigs", PruneParams, ("twig",)),
                "branch_layers:FACTORIES")
register_model("twig", ModelConfig, lambda cfg: [Place("twig", "p_twig", "twig", count=3)],
               "branch_layers:build")
'''


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """A directory on sys.path to write plugin modules into; the registries, the loaded and
    skipped plugins are restored afterwards, so no test sees another's plugins."""
    registry.load_plugins()  # the built-ins and installed plugins, as every test finds them
    kept = {id(r): dict(r._entries) for r in registry._all_registries()}
    saved = dict(registry.CONFIG_DIRS), dict(registry.PLUGINS), dict(registry.SKIPPED)
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for r in registry._all_registries():
        r._entries = kept[id(r)]
    for store, old in zip((registry.CONFIG_DIRS, registry.PLUGINS, registry.SKIPPED), saved,
                          strict=True):
        store.clear()
        store.update(old)
    for name in set(sys.modules) - before:
        del sys.modules[name]


def write(directory: Path, **modules: str) -> None:
    for name, source in modules.items():
        (directory / f"{name}.py").write_text(textwrap.dedent(source))


def mlp(hidden=(8,)):
    return OmegaConf.create({"name": "mlp", "hidden": list(hidden), "activation": "relu"})


def test_a_plugin_scheme_is_validated_like_a_built_in(plugin_dir):
    write(plugin_dir, toy_schemes=TOY_SCHEME, toy_layers=TOY_LAYERS)
    assert registry.load_plugin_module("toy_schemes")
    entry = registry.SCHEMES.get("toy")
    assert entry.package == "toy_schemes" and declaration("toy").keys == ["p", "p_input",
                                                                         "strength"]
    assert check_dropout(mlp(), scheme_config("toy", p=0.3)) == {"input": [0.0],
                                                                 "hidden": [0.3]}
    with pytest.raises(DropbenchError, match="strength=0 is out of range|dropout.strength"):
        check_dropout(mlp(), scheme_config("toy", strength=0))
    lenet = OmegaConf.create({"name": "lenet", "channels": [2], "hidden": [4]})
    with pytest.raises(DropbenchError) as refused:  # conv places: served by other schemes
        check_dropout(lenet, scheme_config("toy", p=0.3))
    assert "dropout=toy cannot drop the conv place" in str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_plugin_scheme_builds_and_states_what_it_built(plugin_dir):
    from types import SimpleNamespace

    from dropbench.dropout.describe import describe_dropout
    from dropbench.models import build_model

    write(plugin_dir, toy_schemes=TOY_SCHEME, toy_layers=TOY_LAYERS)
    registry.load_plugins(["toy_schemes"])
    data = SimpleNamespace(task="classification", input_shape=(4,), num_classes=3)
    model = build_model(mlp(), scheme_config("toy", p=0.3), data)
    assert [(e["scheme"], e["place"], e["rate"]) for e in describe_dropout(model)] == [
        ("toy", "hidden", 0.3)]


def test_a_model_may_offer_a_new_kind_of_place_that_a_scheme_serves(plugin_dir):
    write(plugin_dir, branch_plugin=BRANCH_PLUGIN)
    registry.load_plugins(["branch_plugin"])
    twig = OmegaConf.create({"name": "twig"})
    assert check_dropout(twig, scheme_config("prune", p_twig=0.2)) == {
        "twig": [0.2, 0.2, 0.2]}
    with pytest.raises(DropbenchError, match="model=mlp has no place for dropout.p_twig"):
        check_dropout(mlp(), scheme_config("prune", p_twig=0.2))
    assert check_dropout(twig, scheme_config("standard", p=0)) == {"twig": [0.0] * 3}
    with pytest.raises(DropbenchError, match="model=twig has no place for dropout.p=0.5"):
        check_dropout(twig, scheme_config("standard", p=0.5))


BROKEN = {
    "import_error": "import no_such_module_anywhere\n",
    "bad_builder": TOY_SCHEME.replace('builder="toy_layers:FACTORIES"', 'builder="toy_layers"'),
    "bad_params": TOY_SCHEME.replace("(UnitRates)", ""),
    "unknown_kind": TOY_SCHEME.replace('("dense",)', '("dense", "nowhere")'),
    "clash": TOY_SCHEME.replace('"toy"', '"standard"'),
    "half_done": TOY_SCHEME + "raise RuntimeError('broken after registering toy')\n",
}
REASONS = {"import_error": "no_such_module_anywhere", "bad_builder": "'module:attr'",
           "bad_params": "DropoutParams dataclass", "unknown_kind": "unknown place kinds",
           "clash": "'standard' is already registered by dropbench",
           "half_done": "broken after registering toy"}


@pytest.mark.parametrize("name", list(BROKEN))
def test_a_broken_plugin_is_skipped_in_one_line(plugin_dir, caplog, name):
    write(plugin_dir, **{name: BROKEN[name]}, toy_layers=TOY_LAYERS)
    standard = registry.SCHEMES.get("standard")
    with caplog.at_level(logging.WARNING, logger="dropbench.plugins"):
        assert not registry.load_plugin_module(name)
        assert not registry.load_plugin_module(name)  # said once, not at every load
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "\n" not in lines[0], lines
    assert lines[0].startswith(f"plugin {name} ({name}) skipped: ") and REASONS[name] in lines[0]
    assert "toy" not in registry.SCHEMES  # nothing half registered
    assert registry.SCHEMES.get("standard") is standard  # the built-in keeps its name
    assert check_dropout(mlp(), scheme_config("standard"))  # and dropbench works on


def entry_point_site(site: Path, module: str, source: str, dist: str = "toy-plugin") -> None:
    """An installed distribution as pip leaves it: the module and a dist-info with the entry
    point (what `pip install --target` writes), so importlib.metadata finds it."""
    site.mkdir(parents=True, exist_ok=True)
    write(site, **{module: source})
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[dropbench.plugins]\ntoy = {module}\n")


def with_path(*dirs: Path) -> dict:
    return {"PYTHONPATH": os.pathsep.join([*map(str, dirs), os.environ.get("PYTHONPATH", "")])}


def test_an_installed_plugin_lists_composes_and_trains(cli, tmp_path):
    """Entry point -> `dropbench list` names the scheme and its package; its yaml composes
    through the search-path plugin; a run records it in dropout_built."""
    site, conf = tmp_path / "site", tmp_path / "site" / "toy_conf"
    source = TOY_SCHEME + f"\nfrom dropbench.registry import register_config_dir\n" \
                          f"register_config_dir('file://{conf}')\n"
    entry_point_site(site, "toy_schemes", source)
    write(site, toy_layers=TOY_LAYERS)
    (conf / "dropout").mkdir(parents=True)
    (conf / "dropout" / "toy.yaml").write_text(TOY_YAML)
    env = with_path(site)
    listed = cli("list", env=env)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.split()[:1] == ["toy"])
    assert lines[at].endswith("[dense]") and "from toy-plugin" in lines[at + 2]
    run = cli("train", "dropout=toy", "model.hidden=[8]", "trainer.epochs=1",
              "trainer.progress=false", "hydra.run.dir=run", env=env)
    assert run.returncode == 0, run.stderr
    built = json.loads((tmp_path / "run" / "summary.json").read_text())["dropout_built"]
    assert [(e["scheme"], e["rate"]) for e in built] == [("toy", 0.3)]


def test_a_plugin_named_in_the_config_is_imported_before_validation(cli, tmp_path):
    """No entry point: `plugins=[module]` on the command line loads it before composition, so
    its yaml composes and its scheme is checked, refused in one line at conv places."""
    site, conf = tmp_path / "mods", tmp_path / "mods" / "toy_conf"
    (conf / "dropout").mkdir(parents=True)
    (conf / "dropout" / "toy.yaml").write_text(TOY_YAML)
    write(site, toy_layers=TOY_LAYERS, toy_schemes=TOY_SCHEME + (
        f"\nfrom dropbench.registry import register_config_dir\n"
        f"register_config_dir('file://{conf}')\n"))
    env = with_path(site)
    run = cli("train", "plugins=[toy_schemes]", "dropout=toy", "model=lenet", env=env)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "dropbench: error: dropout=toy cannot drop the conv place (dropout.p=0.3) of "
        "model=lenet: it serves "
        "dense, not conv places; schemes that can: classic, dropblock, dropconnect, gaussian, "
        "spatial, standard; or set dropout.p=0"]
    assert not (tmp_path / "outputs").exists()
    unknown = cli("train", "dropout=toy", "model=lenet", env=env)  # not named: not loaded
    assert unknown.returncode == 2 and "no dropout named 'toy'" in unknown.stderr


def test_a_broken_installed_plugin_warns_once_and_dropbench_works(cli, tmp_path):
    site = tmp_path / "site"
    entry_point_site(site, "toy_broken", "raise ImportError('needs libfoo')\n", "broken-plugin")
    listed = cli("list", env=with_path(site))
    assert listed.returncode == 0
    assert listed.stderr.strip().splitlines() == [
        "plugin toy_broken (broken-plugin) skipped: ImportError: needs libfoo; dropbench runs "
        "without it"]
    assert "standard" in listed.stdout
