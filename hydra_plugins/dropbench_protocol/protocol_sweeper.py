"""Hydra finds sweepers only in the hydra_plugins namespace; this thin class hands the study to
dropbench.sweep.protocol (imported when the sweep starts, so Hydra's plugin scan stays cheap)."""

from hydra.plugins.sweeper import Sweeper


class UCIProtocolSweeper(Sweeper):
    """`hydra/sweeper=uci_protocol` (set by +experiment=gal_uci): Gal & Ghahramani's grid
    search, refit and test over the splits of a UCI dataset."""

    def __init__(self) -> None:
        super().__init__()
        self.config = self.launcher = self.hydra_context = None

    def setup(self, *, hydra_context, task_function, config) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]):
        from hydra.core.override_parser.overrides_parser import OverridesParser

        from dropbench.sweep.protocol import Protocol

        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        return Protocol(self.config, self.launcher, parser, arguments).run()
