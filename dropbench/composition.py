"""Composing a sweep's job configs without composing each one from scratch.

Hydra composes every job of a sweep anew: the defaults list, every config file it names, then
the overrides (0.2 to 0.4 s a job on the CPU of docs/benchmarks.md, longer than a small
job's training). The jobs of a sweep mostly differ only in values (`dropout.p=0.5`,
`seed=2`): such jobs have one defaults list, and their configs differ only where their
overrides set a value. So the first job of each shape is composed by Hydra, and a later job
of the same shape is a copy of that config with the job's own values applied by Hydra's own
override code, and its override lists and `override_dirname` recorded as Hydra records them.

Two jobs have one shape when their overrides, in order, agree in everything but the values
of plain `key=value` overrides: a config group (`model=lenet`), an added, forced or deleted
key, a dict value or a Hydra setting other than `hydra.sweep.*` must be equal, else the job
is composed in full.
"""

import copy

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType, ValueType
from omegaconf import OmegaConf, open_dict


class SweepComposer:
    """Installed as a config loader's `load_sweep_config` (a sweep's one entry point for
    composing a job): composes a job in full only when no job of its shape was composed."""

    def __init__(self, config_loader):
        self.compose = config_loader.load_sweep_config
        self.repository = config_loader.repository
        self.parser = OverridesParser.create()
        self.composed: dict[tuple, tuple] = {}  # (master, shape) -> (config, its overrides)
        config_loader.load_sweep_config = self

    def __call__(self, master_config, sweep_overrides):
        # as Hydra's load_sweep_config: the master's Hydra overrides, then the job's
        lines = [*OmegaConf.to_container(master_config.hydra.overrides.hydra),
                 *sweep_overrides]
        parsed = self.parser.parse_overrides(lines)
        key = (id(master_config), tuple(self.shape(o) for o in parsed))
        known = self.composed.get(key)
        if known is not None:
            values = [o for o, (kind, _) in zip(parsed, key[1], strict=True) if kind == "value"]
            try:
                return with_values(*known, parsed, values, master_config)
            except Exception:  # Hydra composing it in full says what is wrong
                pass
        config = self.compose(master_config, list(sweep_overrides))
        self.composed.setdefault(key, (config, parsed))
        return copy.deepcopy(config)

    def shape(self, override: Override):
        """What two jobs of one shape share: a plain value's key, or the whole override."""
        key = override.key_or_group
        plain = (override.type == OverrideType.CHANGE and override.package is None
                 and override.value_type == ValueType.ELEMENT
                 and not isinstance(override.value(), dict)
                 and (not override.is_hydra_override() or key.startswith("hydra.sweep."))
                 and not self.repository.group_exists(key))
        return ("value", key) if plain else ("as given", override.input_line)


def with_values(config, config_overrides: list[Override], overrides: list[Override],
                values: list[Override], master_config):
    """A copy of `config` (composed by Hydra with `config_overrides`) as Hydra composes it
    with `overrides` of the same shape instead: their plain `values` applied, in order (a key
    set twice ends as Hydra leaves it), and the overrides recorded."""
    config = copy.deepcopy(config)
    ConfigLoaderImpl._apply_overrides_to_config(values, config)
    for hydra_side, name in ((True, "hydra"), (False, "task")):
        before = [o.input_line for o in config_overrides if o.is_hydra_override() == hydra_side]
        now = [o.input_line for o in overrides if o.is_hydra_override() == hydra_side]
        recorded = list(config.hydra.overrides[name])
        # the list the config files start with, then the overrides Hydra appended
        config.hydra.overrides[name] = recorded[: len(recorded) - len(before)] + now
    dirname = config.hydra.job.config.override_dirname
    with open_dict(config.hydra):
        config.hydra.job.override_dirname = get_overrides_dirname(
            overrides=[o for o in overrides if not o.is_hydra_override()],
            kv_sep=dirname.kv_sep, item_sep=dirname.item_sep,
            exclude_keys=dirname.exclude_keys)
    OmegaConf.copy_cache(from_config=master_config, to_config=config)
    return config
