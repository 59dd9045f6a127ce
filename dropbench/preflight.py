"""Config validation before Hydra writes anything (registered in conf/config.yaml as
`hydra.callbacks.validate`). Hydra creates a job's dir and its train.log before it calls the
task function, so a check in the task comes too late to leave the disk untouched.
`on_run_start` sees the composed config of a single run before its dir exists. For a sweep,
`on_multirun_start` composes and checks every job of the basic sweeper before the sweep dir
exists, so one bad value refuses the whole sweep before any job trains, and so do two jobs that
would share one job dir; the composed configs are handed on to the sweeper's own composition
(Sweeper.validate_batch_is_legal), so no job is composed twice for this. Other sweepers (the
Optuna search) choose their jobs as they go: the sweep's config with the values they do not
choose is checked up front, and each job as Hydra composes it, before its dir.

A refusal is one line on stderr and exit code 2 (SystemExit: Hydra turns an exception raised
in a callback into a warning and goes on).
"""

from hydra.experimental.callback import Callback

from dropbench.composition import SweepComposer
from dropbench.errors import DropbenchError, die
from dropbench.user_errors import user_error

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def refuse(message: str):
    die(message)


class CheckedJobs:
    """Installed on Hydra's config loader: every job config composed for the sweep is
    validated. `check` composes ahead of the sweep and keeps the config for the sweeper's
    first request of the same job."""

    def __init__(self, config_loader, swept: set[str] | None = None):
        self.compose = config_loader.load_sweep_config
        self.swept = swept  # the keys that vary between jobs, where known (for messages)
        self.ready: dict = {}
        config_loader.load_sweep_config = self  # the instance's method: sweepers, launchers

    def __call__(self, master_config, sweep_overrides):
        key = (id(master_config), tuple(sweep_overrides))
        config = self.ready.pop(key, None)
        return config if config is not None else self.check(master_config, sweep_overrides)

    def check(self, master_config, sweep_overrides, keep: bool = False):
        config = self.compose(master_config, list(sweep_overrides))
        try:
            check_job(config)
        except DropbenchError as e:
            raise DropbenchError(f"sweep job {self.name(master_config, sweep_overrides)}: {e}"
                                 ) from None
        if keep:
            self.ready[(id(master_config), tuple(sweep_overrides))] = config
        return config


    def name(self, master_config, overrides) -> str:
        """The overrides that tell this job from the others, for messages."""
        if self.swept is not None:
            own = [o for o in overrides if o.split("=", 1)[0] in self.swept]
        else:  # a sweeper's own choices are not among the command line's overrides
            own = [o for o in overrides if o not in master_config.hydra.overrides.task]
        return ",".join(own or overrides)


def basic_sweep(config, config_loader) -> tuple[list[list[str]], set[str]]:
    """Every job's overrides, as Hydra's basic sweeper will expand them, and the swept keys."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    params = config.hydra.sweeper.get("params") or {}
    arguments = [f"{k}={v}" for k, v in params.items()]
    arguments += OmegaConf.to_container(config.hydra.overrides.task, resolve=False)
    parsed = OverridesParser.create(config_loader=config_loader).parse_overrides(arguments)
    jobs = [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]
    return jobs, {o.get_key_element() for o in parsed if o.is_sweep_override()}


def refuse_shared_job_dirs(jobs: list[list[str]]) -> None:
    """Two jobs that differ only in keys a resume may change (threads, device, epochs, ...)
    would share one job dir, and the second would meet the first's run: refused up front."""
    from dropbench import jobdir

    first: dict[str, list[str]] = {}
    for overrides in jobs:
        name = jobdir.job_dir_name(overrides)
        if name in first:
            one = [o for o in first[name] if o not in overrides]
            other = [o for o in overrides if o not in first[name]]
            keys = sorted({jobdir.config_path(o) for o in one + other})
            raise DropbenchError(
                f"jobs {','.join(one)} and {','.join(other)} would share one job dir ({name}): "
                f"{', '.join(keys)} {'says' if len(keys) == 1 else 'say'} how a run is carried "
                "out, not what it trains; give each job a numbered dir with "
                "hydra.sweep.subdir='${hydra.job.num}' (docs/run-dir.md)")
        first[name] = overrides


def check_job(config, whole_job: bool = True) -> None:
    """The checks a job's config must pass: its values, and (for a whole job, not a sweep's
    shared base) a named scheme that drops something."""
    from dropbench.config import validate
    from dropbench.dropout.no_op import refuse_no_op_scheme

    validate(config)
    if whole_job:
        refuse_no_op_scheme(config.model, config.dropout, config.hydra.overrides.task)


class ValidateConfig(Callback):
    def on_run_start(self, config, whole_job: bool = True, **kwargs) -> None:
        try:
            check_job(config, whole_job)
        except DropbenchError as e:
            refuse(str(e))
        # any other exception: Hydra warns and runs the job, whose own validation reports it

    def on_multirun_start(self, config, **kwargs) -> None:
        from hydra.core.global_hydra import GlobalHydra
        from omegaconf import OmegaConf

        from dropbench import jobdir

        # Resolving the sweep dir fills the config's cache for `${now:...}`; every job config
        # composed from here on copies that cache, so all jobs share the one sweep dir
        str(config.hydra.sweep.dir)
        loader = GlobalHydra.instance().config_loader()
        SweepComposer(loader)  # a job like an earlier one but for its values: copied, not composed
        if config.hydra.sweeper.get("_target_") != BASIC_SWEEPER:
            CheckedJobs(loader)
            self.on_run_start(config, whole_job=False)  # the values the sweeper leaves as given
            return
        try:
            jobs, swept = basic_sweep(config, loader)
            checked = CheckedJobs(loader, swept)
            if jobdir.RESOLVER in str(OmegaConf.to_container(config.hydra.sweep)["subdir"]):
                refuse_shared_job_dirs(jobs)
            for overrides in jobs:
                checked.check(config, overrides, keep=True)
        except Exception as e:  # Hydra would only warn about an exception from a callback
            message = user_error(e)
            if message is None:
                raise  # not the user's: the sweeper meets it again and reports it
            refuse(message)
