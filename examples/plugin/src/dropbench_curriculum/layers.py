"""The torch side of the plugin: the curriculum dropout module and the residual MLP. dropbench
imports this module only when it builds a model (plugin.py names it in "module:attr" strings)."""

import math

import torch
from dropbench.dropout import make_dropout, make_linear, plan_rates
from dropbench.dropout.base import Factories
from dropbench.dropout.standard import bernoulli_dropout
from torch import nn

from dropbench_curriculum.plugin import resmlp_places


def curriculum_rate(p_max: float, gamma: float, step: float) -> float:
    """The drop rate after `step` training steps: p_max (1 - exp(-gamma step)). Morerio et al.
    (2017) state the schedule for the retain probability, theta(t) = (1 - theta_max) exp(-gamma
    t) + theta_max; with p = 1 - theta it is this expression."""
    return p_max * (1.0 - math.exp(-gamma * step))


class CurriculumDropout(nn.Module):
    """Inverted Bernoulli dropout at the curriculum's rate. `p` is the rate the schedule
    approaches (what dropout_built reports); `rate()` is the one the next step uses.

    A step is a forward pass in training mode with gradients on. Monte-Carlo evaluation also
    runs dropout modules in training mode, but under no_grad: it samples at the current rate
    without moving the schedule on. The step count is a buffer, so checkpoints carry it and a
    resumed run continues the curriculum where it stopped."""

    drops, mask_examples = "units (rate rising to p)", "per example"

    def __init__(self, p: float, gamma: float):
        super().__init__()
        self.p, self.gamma = p, gamma
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def rate(self) -> float:
        return curriculum_rate(self.p, self.gamma, int(self.step))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        p = self.rate()
        if torch.is_grad_enabled():
            self.step += 1
        return bernoulli_dropout(x, p)

    def logged_values(self) -> dict:
        """The rate in use, one metrics.csv column per module (p.<module>), so the curriculum
        can be read back epoch by epoch."""
        return {"p": self.rate()}

    def extra_repr(self) -> str:
        return f"p={self.p}, gamma={self.gamma}"


# One factory: the scheme declares the dense kind only, served by a module after the layer.
FACTORIES = {"curriculum": Factories(activation=lambda p, cfg: CurriculumDropout(p, cfg.gamma))}

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


class ResMLP(nn.Module):
    """Dropout on the flattened input, a projection to `width`, then blocks h + f(h) with
    f = dropout(act(linear(h))), then a linear classifier. All its dropout comes from the
    registry (make_dropout, make_linear), so any scheme that serves dense places fits."""

    def __init__(self, in_features: int, num_classes: int, model_cfg, dropout_cfg):
        super().__init__()
        input_place, block_place = resmlp_places(model_cfg)
        rates = plan_rates(model_cfg.name, [input_place, block_place], dropout_cfg)
        width = model_cfg.width
        self.stem = nn.Sequential(nn.Flatten(),
                                  make_dropout(dropout_cfg, rates["input"][0], input_place),
                                  nn.Linear(in_features, width))
        self.blocks = nn.ModuleList(
            nn.Sequential(make_linear(dropout_cfg, width, width, p, block_place),
                          ACTIVATIONS[model_cfg.activation](),
                          make_dropout(dropout_cfg, p, block_place))
            for p in rates["block"])
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        for block in self.blocks:
            h = h + block(h)
        return self.head(h)


def build_resmlp(model_cfg, dropout_cfg, data) -> ResMLP:
    """The builder plugin.py registers: (model config, dropout config, data bundle) -> model."""
    return ResMLP(math.prod(data.input_shape), data.num_classes, model_cfg, dropout_cfg)
