"""The `logger` config group's schema: one block per tracking tool, off until the group turns
it on (`logger=[csv,tensorboard,mlflow]` merges conf/logger/<name>.yaml, which sets
`enabled: true`). Every block is always there, so `logger.mlflow.tracking_uri=...` can be
given on the command line in any order with the list."""

from dataclasses import dataclass, field

from dropbench.ranges import at_least, choice


@dataclass
class CsvLogger:
    """The run dir itself (metrics.csv, summary.json): always written, whatever the list says."""


@dataclass
class TensorBoardLogger:
    enabled: bool = False
    dir: str | None = None  # default: <run dir>/tensorboard


@dataclass
class MlflowLogger:
    enabled: bool = False
    tracking_uri: str | None = None  # default: sqlite:///<sweep dir, or run dir>/mlflow.db
    experiment: str | None = None  # default: the sweep dir's path (a run alone: "dropbench")


@dataclass
class WandbLogger:
    enabled: bool = False
    project: str = "dropbench"
    entity: str | None = None
    mode: str = choice("offline", ("offline", "online", "disabled"), "offline: no network; "
                       "`wandb sync` later")
    group: str | None = None  # default: the sweep dir's path


@dataclass
class LoggerConfig:
    csv: CsvLogger = field(default_factory=CsvLogger)
    tensorboard: TensorBoardLogger = field(default_factory=TensorBoardLogger)
    mlflow: MlflowLogger = field(default_factory=MlflowLogger)
    wandb: WandbLogger = field(default_factory=WandbLogger)
    flush_timeout_s: float = at_least(60.0, 0.0, "at the run's end, wait this long for loggers "
                                      "to catch up")
