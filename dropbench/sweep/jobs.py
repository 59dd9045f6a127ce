"""A Hydra job whose training happens later, together with other jobs.

Hydra's `run_job` sets a job up, calls the task function and finishes the job in one go; a
member of a batch is set up, trained for many epochs alongside the others, and finished when
it stops. `MemberJob` splits `run_job` into those steps and does what it does in each: the run
dir, `.hydra/` (config.yaml, hydra.yaml, overrides.yaml), train.log, the callbacks' job start
and end, and the JobReturn the sweeper reads.
"""

import contextlib
import copy
import logging
import os
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus, env_override
from omegaconf import OmegaConf, open_dict, read_write

DEFAULT_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"


class MemberJob:
    def __init__(self, hydra_context, task_function, config):
        self.context, self.task_function, self.config = hydra_context, task_function, config
        HydraConfig.instance().set_config(config)  # the sweep dir may interpolate hydra.job.*
        sweep = config.hydra.sweep
        self.dir = Path(str(sweep.dir), str(sweep.subdir)).absolute()
        with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
            config.hydra.runtime.output_dir = str(self.dir)
        HydraConfig.instance().set_config(config)
        self.hydra_cfg = copy.deepcopy(HydraConfig.instance().cfg)
        self.cfg = copy.deepcopy(config)  # the task's config: everything but hydra
        with read_write(self.cfg), open_dict(self.cfg):
            del self.cfg["hydra"]
        self.overrides = list(OmegaConf.to_container(config.hydra.overrides.task))
        self.num = config.hydra.job.num
        self.handler = None

    def start(self) -> None:
        """Create the run dir, write .hydra/ and tell the callbacks the job started."""
        HydraConfig.instance().set_config(self.config)
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.config.hydra.output_subdir is not None:
            out = self.dir / str(self.config.hydra.output_subdir)
            out.mkdir(parents=True, exist_ok=True)
            OmegaConf.save(self.cfg, out / "config.yaml")
            OmegaConf.save(self.hydra_cfg, out / "hydra.yaml")
            OmegaConf.save(self.config.hydra.overrides.task, out / "overrides.yaml")
        name = self.config.hydra.job.name
        self.handler = logging.FileHandler(self.dir / f"{name}.log")
        self.handler.setFormatter(logging.Formatter(log_format(self.config)))
        with self.env():
            self.context.callbacks.on_job_start(config=self.config,
                                                task_function=self.task_function)

    @contextlib.contextmanager
    def logging(self, console: bool = True):
        """Log records go to this job's train.log (and to the console when `console`)."""
        root = logging.getLogger()
        hidden = [] if console else [h for h in root.handlers if h is not self.handler]
        for h in hidden:
            root.removeHandler(h)
        root.addHandler(self.handler)
        try:
            yield
        finally:
            root.removeHandler(self.handler)
            for h in hidden:
                root.addHandler(h)

    def env(self):
        return env_override(self.hydra_cfg.hydra.job.env_set)

    def end(self, value=None, error: BaseException | None = None) -> JobReturn:
        """Finish the job with its return value, or the exception that failed it."""
        HydraConfig.instance().set_config(self.config)
        ret = JobReturn(overrides=self.overrides, cfg=self.cfg, hydra_cfg=self.hydra_cfg,
                        working_dir=os.getcwd(), task_name=self.config.hydra.job.name)
        ret.status = JobStatus.FAILED if error is not None else JobStatus.COMPLETED
        ret.return_value = error if error is not None else value
        if self.handler is not None:
            self.handler.close()
        with self.env():
            self.context.callbacks.on_job_end(config=self.config, job_return=ret)
        return ret


def log_format(config) -> str:
    """The job log's line format from hydra.job_logging (Hydra's default when absent)."""
    fmt = OmegaConf.select(config, "hydra.job_logging.formatters.simple.format")
    return fmt or DEFAULT_FORMAT
