"""Hydra finds launchers only in the hydra_plugins namespace; this thin class hands the work
to dropbench.sweep (imported when a sweep launches, so Hydra's plugin scan stays cheap)."""

from hydra.plugins.launcher import Launcher


class BatchedLauncher(Launcher):
    """`hydra/launcher=batched`: compatible jobs train as one stacked model, others alone."""

    def __init__(self, max_batch: int = 16) -> None:
        super().__init__()
        if max_batch < 1:
            from dropbench.errors import DropbenchError

            raise DropbenchError(f"hydra.launcher.max_batch={max_batch} must be >= 1")
        self.max_batch = max_batch
        self.config = self.task_function = self.hydra_context = self.validated = None

    def setup(self, *, hydra_context, task_function, config) -> None:
        from dropbench.sweep.launcher import ValidatedConfigs

        self.hydra_context, self.task_function, self.config = hydra_context, task_function, config
        self.validated = ValidatedConfigs(hydra_context.config_loader)

    def launch(self, job_overrides, initial_job_idx: int):
        from dropbench.sweep.launcher import launch

        return launch(self.hydra_context, self.task_function, self.config, self.max_batch,
                      job_overrides, initial_job_idx, self.validated)
