"""The built-in training objectives, registered in dropbench.registry.OBJECTIVES like any
plugin's: each is a config schema (the `objective` group, conf/objective/<name>.yaml) and a
builder in dropbench/engine/objectives.py. Torch-free, so config validation reads it.

- `ce`: the cross-entropy of one training pass (every run before objectives existed).
- `rdrop`: R-Drop (Liang et al. 2021): two training passes with independent dropout masks,
  their mean cross-entropy plus a symmetric KL term between the two predictive distributions,
  weighted by `alpha`; see dropbench/engine/objectives.py for the exact loss.
"""

from dataclasses import dataclass

from omegaconf import MISSING

from dropbench.ranges import at_least, option
from dropbench.registry import register_objective


@dataclass
class ObjectiveConfig:
    """Every objective's config starts here; each objective adds its own keys."""

    name: str = option(MISSING, "the training objective: a registered one (dropbench list)")


@dataclass
class CrossEntropyConfig(ObjectiveConfig):
    pass


@dataclass
class RDropConfig(ObjectiveConfig):
    alpha: float = at_least(1.0, 0.0, "weight of the symmetric KL between the two passes "
                            "(the paper's alpha); 0 = the mean cross-entropy of two passes")


def register() -> None:
    register_objective("ce", CrossEntropyConfig, "dropbench.engine.objectives:CrossEntropy",
                       description="cross-entropy of one training pass")
    register_objective("rdrop", RDropConfig, "dropbench.engine.objectives:RDrop",
                       description="R-Drop (Liang et al. 2021): two dropout passes, mean "
                                   "cross-entropy + alpha * symmetric KL",
                       needs_dropout=True)
