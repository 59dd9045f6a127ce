"""What every case needs: the settings of a bench run, composing the real config tree, and
measuring dropbench's real training loop (`Run.train_epoch`) on a data bundle."""

import contextlib
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from dropbench.bench.harness import Row, measure_all
from dropbench.dropout import SCHEMES
from dropbench.engine.tasks import TASKS
from dropbench.engine.trainer import Run
from dropbench.models import MODELS, build_model


@dataclass
class Settings:
    device: torch.device
    workdir: Path  # a temporary directory: data files, run dirs
    reps: int = 3  # timed repetitions per variant
    warmup: int = 1  # untimed warm-up passes per variant
    scale: float = 1.0  # multiplies every case's amount of work (tests use ~0.01)
    amp: str = "off"  # trainer.amp for dropbench; the references use the same autocast
    compile: bool = False  # trainer.compile for dropbench
    data_dir: Path | None = None  # real data a case needs (uci: uci/yacht/data/ under it)

    def amount(self, full: int, minimum: int = 1) -> int:
        return max(minimum, round(full * self.scale))

    def matmul_dtype(self) -> torch.dtype:
        """The precision the matmul limit is timed in: what autocast runs the products in."""
        if self.device.type == "cuda" and self.amp != "off":
            return torch.bfloat16 if self.amp == "bf16" else torch.float16
        return torch.float32

    def autocast(self):
        """The reference loops' autocast: the same precision dropbench trains in."""
        if self.device.type == "cuda" and self.amp != "off":
            dtype = torch.bfloat16 if self.amp == "bf16" else torch.float16
            return lambda: torch.autocast("cuda", dtype=dtype)
        return contextlib.nullcontext


def compose(settings: Settings, overrides: list[str]):
    """The config `dropbench train OVERRIDES` would get, plus the bench's fixed settings."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from dropbench.config import config_dir, register_schemas, validate

    register_schemas()
    fixed = [f"device={settings.device}", f"data_dir={settings.workdir / 'data'}",
             "trainer.progress=false", f"trainer.amp={settings.amp}",
             f"trainer.compile={settings.compile}"]
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = hydra_compose(config_name="config", overrides=[*overrides, *fixed])
    validate(cfg)
    return cfg


def missing(schemes=(), models=(), tasks=()) -> str | None:
    """Why a case cannot run on this checkout (a scheme/model/task not registered), or None."""
    gone = [f"dropout scheme {s!r}" for s in schemes if s not in SCHEMES]
    gone += [f"model {m!r}" for m in models if m not in MODELS]
    gone += [f"task {t!r}" for t in tasks if t not in TASKS]
    return f"{', '.join(gone)} not registered in this checkout" if gone else None


def head(data, n: int):
    """The bundle with only its first n training examples (or tokens)."""
    train = data.train.head(n) if hasattr(data.train, "head") else data.train[:n]
    return dataclasses.replace(data, train=train)


def trainer_epoch(settings: Settings, cfg, data, warm_size: int):
    """prepare() for `harness.measure_all`: run = one `Run.train_epoch()` over data.train, the loop
    `dropbench train` runs; warm = the same loop over the first `warm_size` examples."""

    def prepare():
        torch.manual_seed(cfg.seed)
        model = build_model(cfg.model, cfg.dropout, data).to(settings.device)
        task = TASKS[data.task](cfg, data)
        warm_task = TASKS[data.task](cfg, head(data, warm_size))
        run = Run(cfg, settings.workdir / "run", task, model, settings.device)

        return run.train_epoch, lambda: run.train_epoch(warm_task)

    return prepare


def measure_entries(entries: list, settings: Settings) -> list[Row]:
    """entries: Row (a variant this checkout lacks) or (Row, prepare); measures the latter
    (interleaved) and returns every row in the original order."""
    measure_all([e for e in entries if isinstance(e, tuple)], settings.device, settings.warmup,
                settings.reps)
    return [e[0] if isinstance(e, tuple) else e for e in entries]
