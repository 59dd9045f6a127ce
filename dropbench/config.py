"""Structured config schemas: Hydra checks every yaml file and override against them at
composition time, so a typo or a wrong type fails before any data is loaded.

The model and dropout blocks have one schema per registered family and scheme
(dropbench.registry: built-ins and plugins alike); the built-in model schemas are declared
here and registered in models/places.py.

Each group's yaml files start with `defaults: [base_<group>]`; fields that a group's schema
declares get their default here, so a yaml file only states what differs.
"""

import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from dropbench import registry
from dropbench.errors import DropbenchError
from dropbench.loggers.config import LoggerConfig
from dropbench.paper import PaperConfig
from dropbench.ranges import (  # noqa: F401  (check_rate, is_list, layer_rates: imported here too)
    SEED_MAX,
    above,
    at_least,
    between,
    check_node,
    check_rate,
    choice,
    is_list,
    layer_rates,
    option,
    widths,
)


@dataclass
class DatasetConfig:
    name: str = MISSING
    val_size: int = at_least(5000, 1, "examples carved from the official train split, fixed "
                             "seed")
    train_subset: int | None = at_least(None, 1, "keep only N training examples",
                                        null="every training example")
    download: bool = option(True, "fetch into data_dir when missing (needs the network)")
    augment: bool = option(False, "cifar10: random crop (4-px padding) + flip per training "
                           "batch")
    checksums: bool = option(True, "cifar10: check each file's md5 against torchvision's list")
    path: str | None = option(None, "dataset=textdir: the directory holding train/valid/test "
                              "text")
    # regression datasets only (dataset=uci; data/uci.py, docs/uncertainty.md)
    split: int | None = at_least(None, 0, "dataset=uci: the fixed train/test split (0.."
                                 "n_splits-1)", null="not a split dataset")
    validation: bool | None = option(None, "dataset=uci: true: the last 20 % of the split's "
                                     "training rows validate; false: all train, test is scored")
    tau: float | None = above(None, 0.0, "dataset=uci: the Gaussian noise precision on the "
                              "original target scale", null="not a regression")
    lengthscale: float | None = above(None, 0.0, "dataset=uci: the weights' prior "
                                      "length-scale (sets the L2 penalty)",
                                      null="not a regression")


@dataclass
class ModelConfig:
    """Every model family's config starts here; each family has its own keys (model_schemas()),
    so a key of another family (model.bptt on an MLP) fails when the config is composed."""

    name: str = MISSING


ACTIVATIONS = ("relu", "tanh", "sigmoid", "selu")  # models/mlp.py builds each


@dataclass
class MLPConfig(ModelConfig):
    hidden: list[int] = widths(lambda: [512, 512], "widths of the hidden layers")
    activation: str = choice("relu", ACTIVATIONS, "the hidden layers' nonlinearity")


@dataclass
class ConvNetConfig(MLPConfig):  # lenet, alexnet: `hidden` are the fully connected layers
    channels: list[int] = widths(list, "filters per conv layer", min_items=1)
    kernel_size: int = at_least(5, 1, "side of each conv kernel")
    pool_size: int = at_least(2, 1, "max-pool window after each conv layer")
    pool_stride: int = at_least(2, 1, "max-pool stride")
    batchnorm: bool = option(False, "BatchNorm after each conv/FC layer")


@dataclass
class ResNetConfig(ModelConfig):
    channels: list[int] = widths(list, "width of each stage", min_items=2)
    blocks: list[int] = widths(list, "residual blocks per stage", min_items=2)
    batchnorm: bool = option(True, "always on in a ResNet")


@dataclass
class RNNConfig(ModelConfig):  # recurrent language models (lstm, gru)
    hidden: list[int] = widths(lambda: [200, 200], "one width per layer", min_items=1)
    embed_size: int | None = at_least(None, 1, "word vector size",
                                      null="the first hidden width")
    tied: bool = option(False, "share the embedding matrix with the softmax weights")
    init_scale: float | None = above(0.1, 0.0, "uniform init in +-init_scale",
                                     null="PyTorch's default init")
    bptt: int = at_least(35, 1, "truncated back-propagation window, in time steps")
    variable_bptt: bool = option(False, "window lengths drawn around bptt, lr scaled "
                                 "(Merity et al.)")
    ar: float = at_least(0.0, 0.0, "activation regularisation: weight of mean(dropped last "
                         "output^2); 0 = off")
    tar: float = at_least(0.0, 0.0, "temporal AR: weight of mean((h_t - h_{t-1})^2), raw last "
                          "output; 0 = off")


@dataclass
class TransformerConfig(ModelConfig):  # the blocks both Transformer families share
    dim: int = at_least(64, 1, "width of every token vector (a multiple of heads)")
    depth: int = at_least(2, 1, "Transformer blocks")
    heads: int = at_least(4, 1, "attention heads per block")
    mlp_ratio: float = above(2.0, 0.0, "the MLP's hidden width as a multiple of dim")


POOLS = ("mean", "cls")  # models/vit.py builds each


@dataclass
class ViTConfig(TransformerConfig):  # vit: a small Vision Transformer
    patch: int = at_least(4, 1, "side of each square patch (must divide the image side)")
    pool: str = choice("mean", POOLS, "what the head reads: the mean of the patch tokens, or a "
                       "class token")


@dataclass
class TransformerLMConfig(TransformerConfig):  # transformer_lm: a decoder-only language model
    tied: bool = option(True, "share the token embedding matrix with the softmax weights")
    bptt: int = at_least(64, 1, "the context: tokens per training window (and the length of "
                         "the position table)")


def model_schemas() -> dict[str, type]:
    """{family name: its config schema} of every registered model family."""
    return {e.name: e.declaration.schema for e in registry.MODELS.entries()}


def objective_schemas() -> dict[str, type]:
    """{objective name: its config schema} of every registered training objective."""
    return {e.name: e.declaration.schema for e in registry.OBJECTIVES.entries()}


SCHEDULES = ("none", "step", "cosine", "decay_after")


@dataclass
class OptimConfig:
    name: str = option(MISSING, "the optimiser: a registered one (dropbench list)")
    lr: float = above(0.01, 0.0, "the learning rate")
    momentum: float = between(0.0, 0.0, 1.0, "SGD momentum", high_open=True)
    nesterov: bool = option(False, "Nesterov momentum (needs optim.momentum > 0)")
    weight_decay: float = at_least(0.0, 0.0, "L2 penalty; 0 = off")
    beta1: float = between(0.9, 0.0, 1.0, "adam, adamw: decay of the gradient's running mean",
                           high_open=True)
    beta2: float = between(0.999, 0.0, 1.0, "adam, adamw: decay of the squared gradient's "
                           "running mean", high_open=True)
    eps: float = above(1e-8, 0.0, "adam, adamw: added to the denominator")
    l1: float = at_least(0.0, 0.0, "L1 penalty on weights, added to the loss; 0 = off")
    max_norm: float | None = above(None, 0.0, "max-norm radius c of each unit's incoming "
                                   "weights", null="no max-norm")
    clip: float | None = above(None, 0.0, "clip the global gradient norm to this value",
                               null="no clipping")
    schedule: str = choice("none", SCHEDULES, "the learning-rate schedule")
    step_size: int = at_least(30, 1, "schedule=step: epochs between decays")
    gamma: float = between(0.1, 0.0, 1.0, "schedule=step: the lr's factor at each decay",
                           low_open=True)
    lr_decay: float = at_least(1.0, 1.0, "schedule=decay_after: divide the lr by this every "
                               "epoch after decay_after; 1 = no decay")
    decay_after: int = at_least(0, 0, "schedule=decay_after: epochs at the initial lr "
                                "(Zaremba et al. 2014)")
    nonmono: int = at_least(5, 1, "ntasgd: average once val is worse than the best before "
                            "the last n epochs")


@dataclass
class TrainerConfig:
    epochs: int = at_least(20, 1, "epochs to train")
    batch_size: int = at_least(64, 1, "examples per training batch")
    patience: int | None = at_least(None, 1, "early stopping: epochs without a better val "
                                    "loss", null="never stop early")
    eval_every: int = at_least(1, 1, "score, checkpoint and write a metrics row every N epochs "
                               "(and after the last); long runs of tiny models spend most "
                               "of their time there")
    train_eval_size: int = at_least(2000, 1, "fixed training subset scored in eval mode")
    resume: bool = option(False, "continue the run in hydra.run.dir")
    overwrite: bool = option(False, "replace a run already in hydra.run.dir")
    progress: bool = option(True, "tqdm bar per epoch")
    deterministic: bool = option(False, "deterministic torch algorithms")
    threads: int | None = at_least(None, 1, "torch CPU threads",
                                   null="cores / parallel jobs")
    amp: str = choice("off", ("off", "bf16", "fp16"), "CUDA mixed precision (no-op on CPU)")
    compile: bool = option(False, "torch.compile the model (CUDA only; no-op on CPU)")


@dataclass
class EvalConfig:
    mode: str = choice("scale", ("scale", "mc"), "scale: one deterministic pass | mc: average "
                       "mc_samples stochastic passes")
    mc_samples: int = at_least(20, 1, "T for eval.mode=mc and for the MC side of "
                               "eval.compare")
    compare: bool = option(False, "summary.json gets scale and MC test metrics + error vs. T")
    curve: list[int] = widths(lambda: [1, 2, 5, 10, 20, 50, 100], "the T values of the error "
                              "vs. T curve")


@dataclass
class ProtocolConfig:
    """The UCI protocol's own settings (+experiment=gal_uci; dropbench/sweep/protocol.py)."""

    splits: list[int] | None = None  # the splits to run; null: every split of the dataset


@dataclass
class Config:
    dataset: DatasetConfig = MISSING
    model: Any = MISSING  # one schema per family: model_schemas()
    dropout: Any = MISSING  # one schema per scheme: dropout/catalog.py declares its params
    objective: Any = MISSING  # one schema per objective: objective_schemas()
    optim: OptimConfig = MISSING
    trainer: TrainerConfig = MISSING
    eval: EvalConfig = field(default_factory=EvalConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)  # tracking sinks (dropbench/loggers)
    seed: int = between(0, 0, SEED_MAX, "seeds numpy, torch and random")
    device: str = "auto"  # auto | cpu | cuda | cuda:N (validate checks the pattern)
    data_dir: str = "~/.cache/dropbench"
    paper: PaperConfig | None = None  # presets: the published results (dropbench/paper.py)
    protocol: ProtocolConfig | None = None  # the UCI protocol sweep (+experiment=gal_uci)
    plugins: list[str] = field(default_factory=list)  # modules to import first (docs/plugins.md)


def register_schemas(overrides=()) -> None:
    """Store every schema in Hydra's ConfigStore: the model schemas and the schemes' params
    dataclasses of every registered family and scheme (torch-free declarations), after
    importing the plugin modules a `plugins=[...]` override among `overrides` names."""
    from dropbench.plugin_conf import plugins_in_overrides

    registry.load_plugins(plugins_in_overrides(overrides))
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    for group, node in [
        ("dataset", DatasetConfig),
        ("optim", OptimConfig),
        ("trainer", TrainerConfig),
    ]:
        cs.store(group=group, name=f"base_{group}", node=node)
    for name, node in model_schemas().items():  # each conf/model/<name>.yaml starts from its own
        cs.store(group="model", name=f"base_model_{name}", node=node)
    for name, node in objective_schemas().items():  # conf/objective/<name>.yaml likewise
        cs.store(group="objective", name=f"base_objective_{name}", node=node)
    for entry in registry.SCHEMES.entries():  # each conf/dropout/<name>.yaml starts from its own
        cs.store(group="dropout", name=f"base_dropout_{entry.name}", node=entry.declaration.params)


def foreign_key_message(key: str, type_name: str, source: str | None) -> str | None:
    """One line for a key the chosen model or scheme does not have (a Hydra compose error
    names the key and the schema class), or None when the class is neither."""
    objective = objective_key_message(key, type_name)
    if objective:
        return objective
    schemas = model_schemas()
    families = [name for name, node in schemas.items() if node.__name__ == type_name]
    if not families:
        from dropbench.dropout.catalog import foreign_key_message as scheme_key_message

        return scheme_key_message(key, type_name, source)
    keys = [f.name for f in fields(schemas[families[0]]) if f.name != "name"]
    owners = [name for name, node in schemas.items()
              if key in {f.name for f in fields(node)}]
    where = f" (set in {source})" if source and not source.startswith("model/") else ""
    hint = f"; {key} is a key of model={', '.join(owners)}" if owners else ""
    return (f"model={' / '.join(families)} has no key '{key}'{where}; its keys: "
            f"{', '.join(keys)}{hint}")


def objective_key_message(key: str, type_name: str) -> str | None:
    """One line for a key the chosen objective lacks (objective=ce objective.alpha=1), or None
    when `type_name` is no objective's schema."""
    schemas = objective_schemas()
    chosen = [name for name, node in schemas.items() if node.__name__ == type_name]
    if not chosen:
        return None
    keys = [f.name for f in fields(schemas[chosen[0]]) if f.name != "name"]
    owners = [name for name, node in schemas.items() if key in {f.name for f in fields(node)}]
    hint = (f"; {key} is a key of objective={', '.join(owners)}: set it in a run or sweep of "
            f"that objective only" if owners else "")
    return (f"objective={chosen[0]} has no key '{key}'; its keys: {', '.join(keys) or 'none'}"
            f"{hint}")


def config_dir() -> Path:
    """The config tree: inside the installed package (wheel), else the repo's top-level conf/."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise DropbenchError(f"config tree not found next to {here}; reinstall dropbench")


def block_schema(key: str, node) -> type | None:
    """The schema of a block typed Any in Config: the model family's or the objective's. The
    dropout block is checked by the dropout plan (check_dropout), together with the places its
    rates land on."""
    schemas = {"model": model_schemas, "objective": objective_schemas}.get(key)
    return schemas().get(node.get("name")) if schemas else None


# --- rules that join several keys: each returns the one-line problem, or None ------------------
def device_rule(cfg) -> str | None:
    device = str(cfg.device)
    if device in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", device):
        return None
    return f"device={cfg.device!r} is unknown; use auto, cpu, cuda or cuda:N"


def momentum_rule(cfg) -> str | None:
    o = cfg.optim
    if o.name == "ntasgd" and o.momentum != 0:
        return (f"optim=ntasgd is plain averaged SGD, but optim.momentum={o.momentum}; set "
                f"optim.momentum=0")
    if o.name in ("adam", "adamw") and o.momentum != 0:  # Adam's betas are its own momentum
        return (f"optim={o.name} has no momentum setting, but optim.momentum={o.momentum}; set "
                f"optim.momentum=0, or use optim=sgd for SGD with momentum")
    if o.nesterov and (o.name != "sgd" or o.momentum <= 0):
        return (f"optim.nesterov=true needs optim=sgd with optim.momentum > 0 (got "
                f"optim={o.name}, momentum={o.momentum}); set optim.momentum=0.9 or "
                f"optim.nesterov=false")
    return None


def resnet_rule(cfg) -> str | None:
    m = cfg.model
    if m.name != "resnet":
        return None
    if len(m.channels) != len(m.blocks):
        return (f"model.channels={list(m.channels)} and model.blocks={list(m.blocks)} need one "
                f"width and one block count per stage; give both lists the same length")
    if not m.batchnorm:
        return "model=resnet always uses BatchNorm; drop model.batchnorm=false"
    return None


def tied_rule(cfg) -> str | None:
    m = cfg.model
    if not m.get("tied") or not m.get("hidden"):  # a Transformer ties equal widths
        return None
    embed = m.embed_size or m.hidden[0]
    if m.hidden[-1] == embed:
        return None
    return (f"model.tied=true needs the last hidden width ({m.hidden[-1]}) to equal "
            f"model.embed_size ({embed}); change one of them or set model.tied=false")


def heads_rule(cfg) -> str | None:
    m = cfg.model
    if m.get("heads") is None or m.dim % m.heads == 0:
        return None
    return (f"model.dim={m.dim} must be a multiple of model.heads={m.heads} (each head gets "
            f"dim / heads features); change one of them")


def inference_rule(cfg) -> str | None:
    if cfg.dropout.get("inference") == "gaussian" and cfg.eval.mode != "mc":
        return ("dropout.inference=gaussian samples at test time; average the samples with "
                "eval.mode=mc (eval.mc_samples=T)")
    return None


def data_rule(cfg) -> str | None:
    d, model = cfg.dataset, cfg.model.name
    dataset, family = registry.DATASETS.find(d.name), registry.MODELS.find(model)
    if dataset is None or family is None:
        return None  # an unknown dataset or model is named by registered_rule
    kind = dataset.declaration
    if kind.text != (family.declaration.reads == "text"):
        wanted = "text" if kind.text else "images"
        fits = [e.name for e in registry.MODELS.entries() if e.declaration.reads == wanted]
        texts = [e.name for e in registry.DATASETS.entries() if e.declaration.text]
        return (f"model={model} cannot train on dataset={d.name}: "
                + (f"use model={' or model='.join(fits)} for a text corpus" if kind.text
                   else f"a language model needs a text dataset "
                        f"({' or '.join(f'dataset={t}' for t in texts)})"))
    if d.augment and not kind.augment:
        return (f"dataset.augment=true is implemented for cifar10 only (crops and flips of "
                f"natural images), not {d.name}; drop the override")
    if d.path and not kind.needs_path:
        return (f"dataset.path={d.path} is read by dataset=textdir only, not {d.name}; drop it "
                f"(data_dir sets where {d.name} is kept) or use dataset=textdir")
    regress_keys = [k for k in REGRESSION_KEYS if d.get(k) is not None]
    if regress_keys and not kind.regress:
        return (f"dataset.{regress_keys[0]} is read by the regression datasets (dataset=uci) "
                f"only, not {d.name}; drop it")
    if kind.regress:
        missing = [k for k in REGRESSION_KEYS if d.get(k) is None]
        if missing:
            return (f"dataset={d.name} needs dataset.{missing[0]} (conf/dataset/uci.yaml sets "
                    f"every regression key); compose it with dataset=uci")
        if model != "mlp":
            return (f"model={model} cannot train on the regression dataset {d.name} (flat "
                    f"inputs, one real-valued output); use model=mlp")
        objective = (cfg.get("objective") or {}).get("name", "ce")
        if objective != "ce":
            return (f"objective={objective} is for classifiers and language models; a "
                    f"regression (dataset={d.name}) trains on the squared error: drop "
                    f"objective={objective}")
    if kind.needs_path and not (d.path and Path(d.path).expanduser().is_dir()):
        return (f"dataset={d.name} needs dataset.path=DIR, a directory with train.txt, "
                f"valid.txt and test.txt" + (f"; {d.path} is not one" if d.path else ""))
    return None


REGRESSION_KEYS = ("split", "validation", "tau", "lengthscale")


def registered_rule(cfg) -> str | None:
    for group, reg in (("dataset", registry.DATASETS), ("model", registry.MODELS),
                       ("optim", registry.OPTIMIZERS), ("objective", registry.OBJECTIVES)):
        if group not in cfg:  # a run dir written before the objective group existed
            continue
        name = cfg[group].name
        if name not in reg:
            return (f"{group}.name={name!r} is unknown; choose one of "
                    f"{', '.join(sorted(reg))} (a plugin's names count once it is installed "
                    f"or listed in plugins=[...])")
    return None


RULES = (registered_rule, device_rule, momentum_rule, resnet_rule, tied_rule, heads_rule,
         inference_rule, data_rule)


def validate(cfg) -> None:
    """Every value of a composed config against its declared range (the schemas' field
    metadata, dropbench/ranges.py), then the rules that join several keys, then each dropout
    rate against the places the model has. Raises DropbenchError with one line. Reads no
    data and imports no torch: the CLI calls it before Hydra creates the run dir. The modules
    named in `plugins` are imported first, so their names are known."""
    registry.load_plugins(cfg.get("plugins") or ())
    check_node(cfg, Config, "", nested=block_schema)
    for rule in RULES:
        problem = rule(cfg)
        if problem:
            raise DropbenchError(problem)
    from dropbench.dropout.plan import check_dropout

    planned = check_dropout(cfg.model, cfg.dropout)  # each rate on a place the model has
    problem = objective_dropout_rule(cfg, planned)
    if problem:
        raise DropbenchError(problem)


def objective_dropout_rule(cfg, planned: dict) -> str | None:
    """An objective that compares dropout passes (R-Drop) on a model that drops nothing would
    train on two identical passes, its KL term always 0: refused. `planned`: the rates the
    dropout plan gives each place."""
    objective = cfg.get("objective")
    entry = registry.OBJECTIVES.find(objective.name) if objective is not None else None
    if entry is None or not entry.declaration.needs_dropout:
        return None
    if any(p for rates in planned.values() for p in rates):
        return None
    return (f"objective={objective.name} compares two dropout passes, but dropout="
            f"{cfg.dropout.name} drops nothing in model={cfg.model.name} (every rate is 0), so "
            f"both passes are the same network; set a rate (e.g. dropout=standard "
            f"dropout.p=0.5) or use objective=ce")
