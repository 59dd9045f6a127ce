"""The plugin's tests run against an installed copy (`pip install ./examples/plugin`) or, from a
checkout, against src/; either way the plugin is registered with dropbench before any test,
as its entry point would register it."""

import importlib.util
import sys
from importlib import metadata
from pathlib import Path

import pytest

PLUGIN_MODULE = "dropbench_curriculum.plugin"
SRC = Path(__file__).resolve().parents[1] / "src"

if importlib.util.find_spec("dropbench_curriculum") is None:  # not installed: the checkout
    sys.path.insert(0, str(SRC))


def entry_point_installed() -> bool:
    """Whether dropbench finds the plugin on its own, through the dropbench.plugins group."""
    return any(ep.value == PLUGIN_MODULE
               for ep in metadata.entry_points(group="dropbench.plugins"))


@pytest.fixture(scope="session", autouse=True)
def registered_plugin():
    from dropbench import registry

    registry.load_plugins([PLUGIN_MODULE])
    assert PLUGIN_MODULE in registry.PLUGINS, registry.SKIPPED.get(PLUGIN_MODULE)
