"""Which jobs of a sweep train together as one stacked model, and why the others cannot.

The jobs of a batch share every config value except the member keys below (each member has
its own seed, dropout rates and optimiser settings). What the stacked trainer supports is
decided in two steps: here from the config, before anything is built (the settings of the
training loop the stacked epoch does not reproduce, SUPPORTED), and in stackable.py from the
members' built models (which model families and dropout schemes stack). Every other job runs
alone, in the same sweep, with a one-line reason.
"""

from dataclasses import dataclass, field

from omegaconf import OmegaConf, open_dict

from dropbench import registry

# Config keys that may differ between the members of one batch.
MEMBER_KEYS = ("seed", "dropout.p", "dropout.p_input", "optim.lr", "optim.momentum",
               "optim.nesterov", "optim.weight_decay", "optim.max_norm", "optim.beta1",
               "optim.beta2", "optim.eps")
# ... and, for a regression dataset (registered with regress=True), what only changes a
# member's data bundle or its weight prior: each member trains and is scored on its own
# tensors (member_data.py) with its own prior (StackedModel.penalty), so all the (p, tau) jobs
# of every split of the UCI protocol can share stacks (the bundles must have one shape:
# dataset.validation, which changes the training size, stays shared).
REGRESSION_MEMBER_KEYS = ("dataset.split", "dataset.tau")
# What the stacked epoch (dropbench/sweep/batch.py) implements: key -> allowed values.
SUPPORTED = {
    "dropout.schedule": ("constant",),  # the stacked trainer keeps no schedule per member
    "objective.name": ("ce",),  # one pass per batch: R-Drop's two passes would need two stacks
    "dataset.augment": (False,),
    "optim.name": ("sgd", "adam", "adamw"),  # stacked_optim.py
    "optim.l1": (0.0,),
    "optim.clip": (None,),
    "trainer.amp": ("off",),
    "trainer.compile": (False,),
    "eval.mode": ("scale",),
    "eval.compare": (False,),
}


@dataclass
class Unit:
    """Jobs (indices into the sweep) trained together, or one job alone with the reason."""

    jobs: list[int] = field(default_factory=list)
    alone_because: str | None = None

    @property
    def batched(self) -> bool:
        return len(self.jobs) > 1


def why_alone(cfg, chdir: bool = False) -> str | None:
    """Why this job (task config) cannot join a batch, in a few words; None if it can."""
    if chdir:
        return "hydra.job.chdir=true changes directory per job"
    dataset = registry.DATASETS.find(str(OmegaConf.select(cfg, "dataset.name", default="")))
    if dataset is not None and dataset.declaration.text:
        return (f"dataset.name={cfg.dataset.name} is a text corpus; the stack trains "
                f"models of examples, not of a token stream")
    for key, allowed in SUPPORTED.items():
        value = OmegaConf.select(cfg, key, default=None)
        if value not in allowed:
            return (f"{key}={as_override(value)} is not batched (batched: "
                    f"{', '.join(map(as_override, allowed))})")
    return None


def as_override(value) -> str:
    """A value as one writes it in an override: null, true, 0.5."""
    if value is None:
        return "null"
    return str(value).lower() if isinstance(value, bool) else str(value)


def member_keys(cfg) -> tuple[str, ...]:
    """The config keys members of this job's batch may differ in."""
    dataset = registry.DATASETS.find(str(OmegaConf.select(cfg, "dataset.name", default="")))
    regress = dataset is not None and dataset.declaration.regress
    return MEMBER_KEYS + REGRESSION_MEMBER_KEYS if regress else MEMBER_KEYS


def batch_key(cfg) -> str:
    """What members of one batch share: the config without the member keys."""
    shared = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    with open_dict(shared):
        for key in member_keys(cfg):
            parent, _, leaf = key.rpartition(".")
            node = OmegaConf.select(shared, parent) if parent else shared
            if node is not None and leaf in node:
                del node[leaf]
    return OmegaConf.to_yaml(shared, sort_keys=True)


def plan(configs: list, max_batch: int, chdir: bool = False) -> list[Unit]:
    """Split the sweep's task configs into batches of at most max_batch compatible jobs and
    jobs that run alone, in the order of each unit's first job."""
    units: list[Unit] = []
    open_batches: dict[str, Unit] = {}
    for i, cfg in enumerate(configs):
        reason = why_alone(cfg, chdir)
        if reason is not None:
            units.append(Unit([i], reason))
            continue
        key = batch_key(cfg)
        unit = open_batches.get(key)
        if unit is None or len(unit.jobs) >= max_batch:
            unit = open_batches[key] = Unit()
            units.append(unit)
        unit.jobs.append(i)
    for unit in units:
        if not unit.batched and unit.alone_because is None:
            unit.alone_because = "no other job left to share a stack with"
    return units
