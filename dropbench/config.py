"""Structured config schemas: Hydra checks every yaml file and override against them at
composition time, so a typo or a wrong type fails before any data is loaded.

Each group's yaml files start with `defaults: [base_<group>]`; fields that a group's schema
declares get their default here, so a yaml file only states what differs.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, ListConfig

from dropbench import DropbenchError
from dropbench.loggers.config import LoggerConfig


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
    name: str = MISSING
    hidden: list[int] = field(default_factory=lambda: [512, 512])
    activation: str = "relu"
    # convolutional nets (lenet, alexnet, resnet)
    channels: list[int] = field(default_factory=list)  # filters per conv layer / resnet stage
    kernel_size: int = 5
    pool_size: int = 2  # max-pool window after each conv layer
    pool_stride: int = 2
    batchnorm: bool = False  # BatchNorm after each conv/FC layer (resnet: always)
    blocks: list[int] = field(default_factory=list)  # resnet: residual blocks per stage
    # recurrent language models (lstm, gru); `hidden` gives one width per layer
    embed_size: int | None = None  # word vector size; null = the first hidden width
    tied: bool = False  # share the embedding matrix with the softmax weights
    init_scale: float | None = 0.1  # uniform init in +-init_scale; null = PyTorch defaults
    bptt: int = 35  # truncated back-propagation window, in time steps
    variable_bptt: bool = False  # window lengths drawn around bptt, lr scaled (Merity et al.)
    ar: float = 0.0  # activation regularisation: weight of mean(dropped last output^2)
    tar: float = 0.0  # temporal AR: weight of mean((h_t - h_{t-1})^2), raw last output


@dataclass
class DropoutConfig:
    name: str = MISSING
    p: Any = 0.5  # a number, or a list with one rate per layer
    p_input: float = 0.0
    where: str = "all"  # CNNs: fc = fully connected layers only, all = input, conv and fc
    block_size: int = 7  # dropblock: side of the dropped squares
    ramp_epochs: int = 0  # dropblock: raise p linearly from 0 over this many epochs; 0 = off
    p_output: float = 0.0  # RNN LMs: the last layer's output, before the softmax
    p_recurrent: float = 0.0  # RNN LMs: recurrent connections (weight_hh, or the gate's update)
    p_embed: float = 0.0  # RNN LMs: whole word rows of the embedding matrix
    compile: bool = False  # dropout=gate: torch.compile its recurrent step function
    per_example: bool = False  # dropconnect: a fresh weight mask per example (costly) or per batch
    inference: str = "mean"  # dropconnect at test: mean (weight scaling) | gaussian (sampling)
    temperature: float = 0.1  # concrete: relaxed Bernoulli temperature
    length_scale: float = 1e-2  # concrete: prior length-scale l of the weight penalty
    dropout_reg: float = 1.0  # concrete: multiplier of the rate (entropy) penalty


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
    model: ModelConfig = MISSING
    dropout: DropoutConfig = MISSING
    optim: OptimConfig = MISSING
    trainer: TrainerConfig = MISSING
    eval: EvalConfig = field(default_factory=EvalConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)  # tracking sinks (dropbench/loggers)
    seed: int = 0
    device: str = "auto"
    data_dir: str = "~/.cache/dropbench"
    paper: dict | None = None  # experiment presets: the published result they target


def register_schemas() -> None:
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    for group, node in [
        ("dataset", DatasetConfig),
        ("model", ModelConfig),
        ("dropout", DropoutConfig),
        ("optim", OptimConfig),
        ("trainer", TrainerConfig),
    ]:
        cs.store(group=group, name=f"base_{group}", node=node)


def config_dir() -> Path:
    """The config tree: inside the installed package (wheel), else the repo's top-level conf/."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise DropbenchError(f"config tree not found next to {here}; reinstall dropbench")


def layer_rates(p: Any, n_layers: int, what: str = "dropout.p") -> list[float]:
    """Expand a single rate or a per-layer list into one rate per layer."""
    rates = list(p) if _is_list(p) else [p] * n_layers
    if len(rates) != n_layers:
        raise DropbenchError(
            f"{what} has {len(rates)} rates but the model has {n_layers} places for dropout; "
            f"give one number or a list of {n_layers}"
        )
    return [check_rate(r, what) for r in rates]


def _is_list(x: Any) -> bool:
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
    p = cfg.dropout.p
    for r in p if _is_list(p) else [p]:
        check_rate(r, "dropout.p")
    if cfg.dropout.where not in ("fc", "all"):
        raise DropbenchError(f"dropout.where={cfg.dropout.where!r} is unknown; use fc (fully "
                             f"connected layers only) or all (input, conv and fc layers)")
    if cfg.dropout.block_size < 1 or cfg.dropout.ramp_epochs < 0:
        raise DropbenchError("dropout.block_size must be >= 1 and dropout.ramp_epochs >= 0")
    if t.amp not in ("off", "bf16", "fp16"):
        raise DropbenchError(f"trainer.amp={t.amp!r} is unknown; use off, bf16 or fp16")
    for place in ("p_input", "p_output", "p_recurrent", "p_embed"):
        check_rate(cfg.dropout[place], f"dropout.{place}")
    if cfg.optim.lr_decay < 1:
        raise DropbenchError(f"optim.lr_decay={cfg.optim.lr_decay} must be >= 1 (it divides "
                             f"the lr; 1 = no decay)")
    if cfg.optim.decay_after < 0:
        raise DropbenchError(f"optim.decay_after={cfg.optim.decay_after} must be >= 0")
    if cfg.model.bptt < 1:
        raise DropbenchError(f"model.bptt={cfg.model.bptt} must be >= 1")
    ar, tar = cfg.model.get("ar", 0.0), cfg.model.get("tar", 0.0)  # language models only
    if ar < 0 or tar < 0:
        raise DropbenchError(f"model.ar={ar} and model.tar={tar} must be >= 0 (0 = off)")
    if cfg.optim.nonmono < 1:
        raise DropbenchError(f"optim.nonmono={cfg.optim.nonmono} must be >= 1 (validation "
                             f"checks before NT-ASGD compares)")
    validate_eval(cfg.eval)
    if cfg.dropout.inference == "gaussian" and cfg.eval.mode != "mc":
        raise DropbenchError("dropout.inference=gaussian samples at test time; average the "
                             "samples with eval.mode=mc (eval.mc_samples=T)")


def validate_eval(ev) -> None:
    if ev.mode not in ("scale", "mc"):
        raise DropbenchError(f"eval.mode={ev.mode!r} is unknown; use scale or mc")
    if ev.mc_samples < 1 or any(t < 1 for t in ev.curve):
        raise DropbenchError(f"eval.mc_samples={ev.mc_samples} and eval.curve={list(ev.curve)} "
                             f"need sample counts >= 1")
