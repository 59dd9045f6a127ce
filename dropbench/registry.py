"""The public registration API: one registry per kind of thing dropbench can be extended with
(dropout schemes, model families, datasets, optimisers, training objectives, and the kinds of
place a model offers).

Each entry is a torch-free declaration (its name, its params or schema dataclass, a
description, the package it comes from) plus `builder`, a "module:attr" string that names the
object building it. The builder's module is imported only when something is built, so
`dropbench list`, `train --help` and config validation read the registries without torch.

The built-in schemes, models, datasets and optimisers register through this same API: each
declaration module named in BUILTIN has a `register()` that the first read of any registry
calls, before any plugin registers (so a plugin cannot take a built-in's name). Plugins
register from their own modules, found through the `dropbench.plugins` entry-point group or
named in the config (`plugins=[my_pkg.schemes]`); see docs/plugins.md. A plugin that cannot be
imported, declares something malformed or reuses a taken name is skipped with one warning line
naming it; dropbench works on without it.

This module imports nothing from dropbench but DropbenchError, and names the declaration
modules as data, so every other module may import it.
"""

import importlib
import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, is_dataclass
from importlib import metadata
from typing import Any

from dropbench.errors import DropbenchError

ENTRY_POINT_GROUP = "dropbench.plugins"
BUILTIN_PACKAGE = "dropbench"
BUILTIN = (  # the declaration modules of the built-ins, loaded before any plugin
    "dropbench.dropout.kinds",
    "dropbench.models.places",  # before the schemes: a model may declare a kind they serve
    "dropbench.dropout.catalog",
    "dropbench.datasets",
    "dropbench.optimizers",
    "dropbench.objectives",
)


class PluginError(DropbenchError):
    """A plugin's declaration is malformed or clashes with one already registered."""


log = logging.getLogger("dropbench.plugins")  # a skipped plugin: one line naming it


@dataclass(frozen=True)
class Entry:
    """One registered thing. `declaration`: what validation and `dropbench list` read (a scheme's
    Declaration, a model's schema and places, ...); `builder`: "module:attr" of what builds it."""

    name: str
    declaration: Any
    builder: str | None
    description: str = ""
    package: str = BUILTIN_PACKAGE

    def load(self):
        """The builder object (this imports its module, and torch with it where it uses it)."""
        module, _, attr = self.builder.partition(":")
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj


def check_builder(kind: str, name: str, builder: str | None) -> None:
    module, colon, attr = (builder or "").partition(":")
    if not (module and colon and attr):
        raise PluginError(f"{kind} {name!r}: builder must be a 'module:attr' string, got "
                          f"{builder!r}")


class Registry:
    """Entries of one kind, by name. Reading it loads the built-ins and installed plugins."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def add(self, entry: Entry) -> Entry:
        if not entry.name or not isinstance(entry.name, str):
            raise PluginError(f"a {self.kind} needs a non-empty name, got {entry.name!r}")
        taken = self._entries.get(entry.name)
        if taken is not None:
            raise PluginError(f"{self.kind} {entry.name!r} is already registered by "
                              f"{taken.package}")
        self._entries[entry.name] = entry
        return entry

    def remove(self, name: str) -> None:
        self._entries.pop(name, None)

    def _loaded(self) -> dict[str, Entry]:
        load_plugins()
        return self._entries

    def __contains__(self, name: object) -> bool:
        return name in self._loaded()

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._loaded()))

    def __len__(self) -> int:
        return len(self._loaded())

    def names(self) -> list[str]:
        return list(self._loaded())

    def entries(self) -> list[Entry]:
        return list(self._loaded().values())

    def find(self, name: str) -> Entry | None:
        return self._loaded().get(name)

    def get(self, name: str, what: str | None = None) -> Entry:
        """The entry, or one line naming the choices."""
        entry = self.find(name)
        if entry is None:
            raise DropbenchError(f"unknown {what or self.kind} {name!r}; choose one of "
                                 f"{', '.join(sorted(self._entries))}")
        return entry


SCHEMES = Registry("dropout scheme")
MODELS = Registry("model")
DATASETS = Registry("dataset")
OPTIMIZERS = Registry("optimiser")
OBJECTIVES = Registry("objective")
PLACE_KINDS = Registry("place kind")
CONFIG_DIRS: dict[str, str] = {}  # package -> its Hydra config dir ("pkg://my_pkg.conf")


def _package(package: str | None, builder: str | None = None) -> str:
    """Who registers: the caller's word, else the distribution being loaded, else the top-level
    module of the builder."""
    _ensure_builtins()  # a plugin imported directly still meets the built-ins' names first
    return package or _current or (builder or BUILTIN_PACKAGE).split(".")[0].split(":")[0]


# --- declaring ----------------------------------------------------------------------------------
def register_place_kind(name: str, description: str, *, package: str | None = None) -> Entry:
    """A kind of place (what is dropped there): a model's places name it, a scheme serves it."""
    return PLACE_KINDS.add(Entry(name, None, None, description, _package(package)))


def register_scheme(declaration, builder: str, *, package: str | None = None) -> Entry:
    """A dropout scheme: `declaration` is a dropbench.dropout.catalog.Declaration (name,
    description, params dataclass, the place kinds it serves); `builder` names the
    {name: Factories} dict (or one Factories) that builds its modules."""
    package = _package(package, builder)  # the built-ins first: their kinds, their names
    check_builder("dropout scheme", declaration.name, builder)
    unknown = [k for k in declaration.kinds if k not in PLACE_KINDS._entries]
    if unknown:
        raise PluginError(f"dropout scheme {declaration.name!r} serves unknown place kinds "
                          f"{unknown}; register them with register_place_kind first")
    return SCHEMES.add(Entry(declaration.name, declaration, builder, declaration.description,
                             package))


@dataclass(frozen=True)
class ModelDeclaration:
    """A model family: its config schema (a ModelConfig dataclass), `places(model_cfg) ->
    [Place]` (torch-free), and `reads`: "images" or "text" (what its data must be)."""

    schema: type
    places: Callable
    reads: str = "images"


def register_model(name: str, schema: type, places: Callable, builder: str, *,
                   description: str = "", reads: str = "images",
                   package: str | None = None) -> Entry:
    """A model family: `builder` names build(model_cfg, dropout_cfg, data) -> nn.Module."""
    check_builder("model", name, builder)
    if not is_dataclass(schema) or not callable(places) or reads not in ("images", "text"):
        raise PluginError(f"model {name!r}: schema must be a dataclass, places a function of "
                          f"the model config, reads 'images' or 'text'")
    return MODELS.add(Entry(name, ModelDeclaration(schema, places, reads), builder, description,
                            _package(package, builder)))


@dataclass(frozen=True)
class DatasetDeclaration:
    """What a dataset gives the model and which of the dataset keys it honours."""

    text: bool = False  # a word-level corpus (language models) rather than labelled images
    augment: bool = False  # dataset.augment is implemented for it
    needs_path: bool = False  # dataset.path names the directory it reads
    regress: bool = False  # real-valued targets (a regression: dataset.split, tau, ...)


def register_dataset(name: str, builder: str, *, description: str = "", text: bool = False,
                     augment: bool = False, needs_path: bool = False, regress: bool = False,
                     package: str | None = None) -> Entry:
    """A dataset: `builder` names load(dataset_cfg, data_root, device) -> the data bundle."""
    check_builder("dataset", name, builder)
    return DATASETS.add(Entry(name, DatasetDeclaration(text, augment, needs_path, regress), builder,
                              description, _package(package, builder)))


def register_optimizer(name: str, builder: str, *, description: str = "",
                       package: str | None = None) -> Entry:
    """An optimiser: `builder` names build(optim_cfg, params) -> torch.optim.Optimizer."""
    check_builder("optimiser", name, builder)
    return OPTIMIZERS.add(Entry(name, None, builder, description, _package(package, builder)))


@dataclass(frozen=True)
class ObjectiveDeclaration:
    """A training objective: its config schema (an ObjectiveConfig dataclass, dropbench/
    objectives.py) and `needs_dropout`: whether it means anything only on a model that drops
    something (R-Drop compares two dropout passes), so a run without dropout is refused."""

    schema: type
    needs_dropout: bool = False


def register_objective(name: str, schema: type, builder: str, *, description: str = "",
                       needs_dropout: bool = False, package: str | None = None) -> Entry:
    """A training objective: `builder` names build(objective_cfg) -> the object that turns
    the logits of one or more training passes into the loss (dropbench/engine/objectives.py).
    Evaluation never uses it: val and test are scored by cross-entropy whatever trained."""
    check_builder("objective", name, builder)
    if not is_dataclass(schema):
        raise PluginError(f"objective {name!r}: schema must be a dataclass")
    return OBJECTIVES.add(Entry(name, ObjectiveDeclaration(schema, needs_dropout), builder,
                                description, _package(package, builder)))


def register_config_dir(path: str, *, package: str | None = None) -> None:
    """A Hydra config dir ("pkg://my_pkg.conf") holding the plugin's yaml files (dropout/,
    model/, ...); the dropbench search-path plugin adds it, so `dropout=my_scheme` composes."""
    CONFIG_DIRS[_package(package)] = path


def model(name: str, places: Callable, *, builder: str, description: str = "",
          reads: str = "images") -> Callable[[type], type]:
    """Decorator form of register_model, on the family's config schema dataclass."""
    def wrap(schema: type) -> type:
        register_model(name, schema, places, builder, description=description, reads=reads)
        return schema
    return wrap


# --- loading ------------------------------------------------------------------------------------
_state = {"builtins": False, "entry_points": False}
_current: str | None = None  # the package whose module is being loaded, for its entries
PLUGINS: dict[str, str] = {}  # module name -> package, for every plugin module loaded
SKIPPED: dict[str, str] = {}  # module name -> the one line that said why, warned once


def _all_registries() -> tuple[Registry, ...]:
    return (PLACE_KINDS, SCHEMES, MODELS, DATASETS, OPTIMIZERS, OBJECTIVES)


def load_plugin_module(module: str, package: str | None = None) -> bool:
    """Import one plugin module so its registrations run. A failure (an import error, a bad
    declaration, a clash) removes whatever the module registered and warns in one line."""
    global _current
    if module in SKIPPED:
        return False
    if module in PLUGINS or module in BUILTIN and _state["builtins"]:
        return True
    package = package or module.split(".")[0]
    before = {id(r): set(r._entries) for r in _all_registries()}
    previous, _current = _current, package
    try:
        importlib.import_module(module)
    except Exception as e:  # any failure inside a plugin must leave dropbench working
        for registry in _all_registries():
            for name in set(registry._entries) - before[id(registry)]:
                registry.remove(name)
        CONFIG_DIRS.pop(package, None)
        sys.modules.pop(module, None)  # a later import tries again rather than half a module
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if not isinstance(e, DropbenchError):
            reason = f"{type(e).__name__}: {reason}"
        SKIPPED[module] = (f"plugin {module} ({package}) skipped: {reason}; dropbench runs "
                           f"without it")
        log.warning(SKIPPED[module])
        return False
    finally:
        _current = previous
    PLUGINS[module] = package
    return True


def _ensure_builtins() -> None:
    if not _state["builtins"]:
        _state["builtins"] = True  # set first: the declaration modules register through here
        for module in BUILTIN:  # a broken built-in is a bug in dropbench: let it raise
            importlib.import_module(module).register()


def _load_entry_points() -> None:
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        package = ep.dist.name if ep.dist is not None else ep.name
        load_plugin_module(ep.value.partition(":")[0], package)


def load_plugins(modules: Iterable[str] = ()) -> None:
    """Load the built-ins, then the installed plugins (once), then `modules` (the config's
    `plugins` list). Cheap after the first call."""
    _ensure_builtins()
    if not _state["entry_points"]:
        _state["entry_points"] = True
        _load_entry_points()
    for module in modules:
        load_plugin_module(str(module))
