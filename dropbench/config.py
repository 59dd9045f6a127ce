"""Structured config schemas: Hydra checks every yaml file and override against them at
composition time, so a typo or a wrong type fails before any data is loaded.

Each group's yaml files start with `defaults: [base_<group>]`; fields that a group's schema
declares get their default here, so a yaml file only states what differs.
"""

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, ListConfig

from dropbench import DropbenchError
from dropbench.loggers.config import LoggerConfig
from dropbench.paper import PaperConfig


@dataclass
class DatasetConfig:
    name: str = MISSING
    val_size: int = 5000  # examples carved from the official train split, fixed seed
    train_subset: int | None = None  # keep only N training examples
    download: bool = True  # fetch into data_dir when missing (needs the network)
    augment: bool = False  # cifar10: random crop (4-px padding) + flip per training batch
    checksums: bool = True  # cifar10: check each file's md5 against torchvision's list
    path: str | None = None  # dataset=textdir: the directory holding train/valid/test text


@dataclass
class ModelConfig:
    """Every model family's config starts here; each family has its own keys (MODEL_SCHEMAS),
    so a key of another family (model.bptt on an MLP) fails when the config is composed."""

    name: str = MISSING


@dataclass
class MLPConfig(ModelConfig):
    hidden: list[int] = field(default_factory=lambda: [512, 512])  # widths of the hidden layers
    activation: str = "relu"


@dataclass
class ConvNetConfig(MLPConfig):  # lenet, alexnet: `hidden` are the fully connected layers
    channels: list[int] = field(default_factory=list)  # filters per conv layer
    kernel_size: int = 5
    pool_size: int = 2  # max-pool window after each conv layer
    pool_stride: int = 2
    batchnorm: bool = False  # BatchNorm after each conv/FC layer


@dataclass
class ResNetConfig(ModelConfig):
    channels: list[int] = field(default_factory=list)  # width of each stage
    blocks: list[int] = field(default_factory=list)  # residual blocks per stage
    batchnorm: bool = True  # always on in a ResNet


@dataclass
class RNNConfig(ModelConfig):  # recurrent language models (lstm, gru)
    hidden: list[int] = field(default_factory=lambda: [200, 200])  # one width per layer
    embed_size: int | None = None  # word vector size; null = the first hidden width
    tied: bool = False  # share the embedding matrix with the softmax weights
    init_scale: float | None = 0.1  # uniform init in +-init_scale; null = PyTorch defaults
    bptt: int = 35  # truncated back-propagation window, in time steps
    variable_bptt: bool = False  # window lengths drawn around bptt, lr scaled (Merity et al.)
    ar: float = 0.0  # activation regularisation: weight of mean(dropped last output^2)
    tar: float = 0.0  # temporal AR: weight of mean((h_t - h_{t-1})^2), raw last output


MODEL_SCHEMAS = {"mlp": MLPConfig, "lenet": ConvNetConfig, "alexnet": ConvNetConfig,
                 "resnet": ResNetConfig, "lstm": RNNConfig, "gru": RNNConfig}


@dataclass
class OptimConfig:
    name: str = MISSING
    lr: float = 0.01
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    l1: float = 0.0
    max_norm: float | None = None
    clip: float | None = None  # clip the global gradient norm to this value
    schedule: str = "none"
    step_size: int = 30
    gamma: float = 0.1
    lr_decay: float = 1.0  # schedule=decay_after: divide the lr by this every epoch after...
    decay_after: int = 0  # ...this many epochs at the initial lr (Zaremba et al. 2014)
    nonmono: int = 5  # ntasgd: average once val is worse than the best before the last n epochs


@dataclass
class TrainerConfig:
    epochs: int = 20
    batch_size: int = 64
    patience: int | None = None
    train_eval_size: int = 2000
    resume: bool = False
    overwrite: bool = False
    progress: bool = True
    deterministic: bool = False
    threads: int | None = None  # torch CPU threads; null = cores / parallel jobs
    amp: str = "off"  # CUDA mixed precision: off | bf16 | fp16 (no-op on CPU)
    compile: bool = False  # torch.compile the model (CUDA only; no-op on CPU)


@dataclass
class EvalConfig:
    mode: str = "scale"  # scale: one deterministic pass | mc: average mc_samples stochastic passes
    mc_samples: int = 20  # T for eval.mode=mc and for the MC side of eval.compare
    compare: bool = False  # summary.json gets scale and MC test metrics + error vs. T
    curve: list[int] = field(default_factory=lambda: [1, 2, 5, 10, 20, 50, 100])  # the T values


@dataclass
class Config:
    dataset: DatasetConfig = MISSING
    model: Any = MISSING  # one schema per family: MODEL_SCHEMAS
    dropout: Any = MISSING  # one schema per scheme: dropout/catalog.py declares its params
    optim: OptimConfig = MISSING
    trainer: TrainerConfig = MISSING
    eval: EvalConfig = field(default_factory=EvalConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)  # tracking sinks (dropbench/loggers)
    seed: int = 0
    device: str = "auto"
    data_dir: str = "~/.cache/dropbench"
    paper: PaperConfig | None = None  # presets: the published results (dropbench/paper.py)


def register_schemas() -> None:
    """Store every schema in Hydra's ConfigStore. The dropout schemas are the schemes' params
    dataclasses (dropbench/dropout/catalog.py, which imports no torch)."""
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    for group, node in [
        ("dataset", DatasetConfig),
        ("optim", OptimConfig),
        ("trainer", TrainerConfig),
    ]:
        cs.store(group=group, name=f"base_{group}", node=node)
    for name, node in MODEL_SCHEMAS.items():  # each conf/model/<name>.yaml starts from its own
        cs.store(group="model", name=f"base_model_{name}", node=node)
    from dropbench.dropout.catalog import DECLARED

    for name, scheme in DECLARED.items():  # each conf/dropout/<name>.yaml starts from its own
        cs.store(group="dropout", name=f"base_dropout_{name}", node=scheme.params)


def foreign_key_message(key: str, type_name: str, source: str | None) -> str | None:
    """One line for a key the chosen model or scheme does not have (a Hydra compose error
    names the key and the schema class), or None when the class is neither."""
    families = [name for name, node in MODEL_SCHEMAS.items() if node.__name__ == type_name]
    if not families:
        from dropbench.dropout.catalog import foreign_key_message as scheme_key_message

        return scheme_key_message(key, type_name, source)
    keys = [f.name for f in fields(MODEL_SCHEMAS[families[0]]) if f.name != "name"]
    owners = [name for name, node in MODEL_SCHEMAS.items()
              if key in {f.name for f in fields(node)}]
    where = f" (set in {source})" if source and not source.startswith("model/") else ""
    hint = f"; {key} is a key of model={', '.join(owners)}" if owners else ""
    return (f"model={' / '.join(families)} has no key '{key}'{where}; its keys: "
            f"{', '.join(keys)}{hint}")


def config_dir() -> Path:
    """The config tree: inside the installed package (wheel), else the repo's top-level conf/."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise DropbenchError(f"config tree not found next to {here}; reinstall dropbench")


def is_list(x: Any) -> bool:
    return isinstance(x, (list, tuple, ListConfig))


def check_rate(p: Any, what: str) -> float:
    try:
        p = float(p)
    except (TypeError, ValueError):
        raise DropbenchError(
            f"{what}={p!r} is not a number; use a drop probability in [0, 1)"
        ) from None
    if not 0.0 <= p < 1.0:
        raise DropbenchError(f"{what}={p} is out of range; use a drop probability in [0, 1)")
    return p


def layer_rates(p: Any, n_layers: int, what: str = "dropout.p") -> list[float]:
    """Expand a single rate or a per-layer list into one rate per layer."""
    values = list(p) if is_list(p) else [p] * n_layers
    if len(values) != n_layers:
        raise DropbenchError(
            f"{what} has {len(values)} rates but the model has {n_layers} places for it; "
            f"give one number or a list of {n_layers}"
        )
    return [check_rate(r, what) for r in values]


def validate(cfg) -> None:
    """Range checks that types alone cannot express. Raises DropbenchError."""
    if cfg.device not in ("auto", "cpu", "cuda") and not str(cfg.device).startswith("cuda:"):
        raise DropbenchError(f"device={cfg.device!r} is unknown; use auto, cpu or cuda")
    t = cfg.trainer
    for key in ("epochs", "batch_size", "train_eval_size"):
        minimum = 0 if key == "epochs" else 1
        if t[key] < minimum:
            raise DropbenchError(f"trainer.{key}={t[key]} must be >= {minimum}")
    if t.patience is not None and t.patience < 1:
        raise DropbenchError(f"trainer.patience={t.patience} must be >= 1 (or null to disable)")
    if cfg.optim.lr <= 0:
        raise DropbenchError(f"optim.lr={cfg.optim.lr} must be > 0")
    if cfg.optim.max_norm is not None and cfg.optim.max_norm <= 0:
        raise DropbenchError(f"optim.max_norm={cfg.optim.max_norm} must be > 0 (or null)")
    if cfg.dataset.val_size < 1:
        raise DropbenchError(f"dataset.val_size={cfg.dataset.val_size} must be >= 1")
    if cfg.dataset.train_subset is not None and cfg.dataset.train_subset < 1:
        raise DropbenchError(f"dataset.train_subset={cfg.dataset.train_subset} must be >= 1")
    if t.amp not in ("off", "bf16", "fp16"):
        raise DropbenchError(f"trainer.amp={t.amp!r} is unknown; use off, bf16 or fp16")
    if cfg.optim.lr_decay < 1:
        raise DropbenchError(f"optim.lr_decay={cfg.optim.lr_decay} must be >= 1 (it divides "
                             f"the lr; 1 = no decay)")
    if cfg.optim.decay_after < 0:
        raise DropbenchError(f"optim.decay_after={cfg.optim.decay_after} must be >= 0")
    if cfg.model.get("bptt", 1) < 1:
        raise DropbenchError(f"model.bptt={cfg.model.bptt} must be >= 1")
    ar, tar = cfg.model.get("ar", 0.0), cfg.model.get("tar", 0.0)  # language models only
    if ar < 0 or tar < 0:
        raise DropbenchError(f"model.ar={ar} and model.tar={tar} must be >= 0 (0 = off)")
    if cfg.optim.nonmono < 1:
        raise DropbenchError(f"optim.nonmono={cfg.optim.nonmono} must be >= 1 (validation "
                             f"checks before NT-ASGD compares)")
    validate_eval(cfg.eval)
    from dropbench.models import check_dropout

    check_dropout(cfg.model, cfg.dropout)  # each rate on a place the model has, the scheme serves
    if cfg.dropout.get("inference") == "gaussian" and cfg.eval.mode != "mc":
        raise DropbenchError("dropout.inference=gaussian samples at test time; average the "
                             "samples with eval.mode=mc (eval.mc_samples=T)")


def validate_eval(ev) -> None:
    if ev.mode not in ("scale", "mc"):
        raise DropbenchError(f"eval.mode={ev.mode!r} is unknown; use scale or mc")
    if ev.mc_samples < 1 or any(t < 1 for t in ev.curve):
        raise DropbenchError(f"eval.mc_samples={ev.mc_samples} and eval.curve={list(ev.curve)} "
                             f"need sample counts >= 1")
