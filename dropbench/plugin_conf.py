"""Where the plugins meet Hydra: the `plugins=[...]` override read before composition, and the
plugins' config dirs, which hydra_plugins/dropbench_searchpath adds to the search path so a
plugin's `conf/dropout/<name>.yaml` composes as `dropout=<name>`."""

from importlib import resources
from pathlib import Path

from dropbench import registry

PKG = "pkg://"


def plugins_in_overrides(overrides) -> list[str]:
    """The modules a `plugins=[a,b]` (or `+plugins=...`) command-line override names, read with
    Hydra's own parser; a malformed override is left for Hydra to report."""
    wanted = [o for o in overrides if o.lstrip("+~").split("=")[0] == "plugins"]
    if not wanted:
        return []
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(wanted)
    except Exception:  # Hydra names the bad override when it composes
        return []
    modules = []
    for override in parsed:
        if override.is_delete():
            continue
        value = override.value()
        modules += [str(v) for v in value] if isinstance(value, list) else [str(value)]
    return modules


def search_path() -> list[str]:
    """The config dirs the registered plugins declared, as Hydra search-path entries."""
    registry.load_plugins()
    return list(registry.CONFIG_DIRS.values())


def plugin_config_paths() -> list[Path]:
    """The plugins' config dirs on disk (`dropbench list` reads their yaml files)."""
    paths = []
    for entry in search_path():
        if entry.startswith(PKG):
            package = entry[len(PKG):].replace("/", ".")
            try:
                paths.append(Path(str(resources.files(package))))
            except (ModuleNotFoundError, TypeError):
                continue  # the plugin's own problem; its schemes still list without yaml
        elif entry.startswith("file://"):
            paths.append(Path(entry[len("file://"):]))
    return [p for p in paths if p.is_dir()]
