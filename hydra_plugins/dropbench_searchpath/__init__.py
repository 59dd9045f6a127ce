"""Adds every dropbench plugin's config dir (dropbench.registry.register_config_dir) to Hydra's
search path, so a plugin's yaml files compose without editing dropbench."""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class DropbenchPluginSearchPath(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        from dropbench.plugin_conf import search_path as plugin_dirs

        for path in plugin_dirs():
            search_path.append(provider="dropbench-plugin", path=path)
