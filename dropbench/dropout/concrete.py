"""Concrete dropout (Gal, Hron & Kendall 2017): the drop rate of each layer is a parameter,
learned by gradient descent through a relaxed (concrete) Bernoulli mask.

Training draws, for u ~ U(0, 1) and temperature t,
    drop = sigmoid((log p - log(1-p) + log u - log(1-u)) / t),   x * (1 - drop) / (1 - p),
a smooth mask that tends to a Bernoulli(p) drop mask as t -> 0. Evaluation is the identity
(inverted scaling, like `standard`); `eval.mode=mc` averages relaxed masks, as Gal et al.'s code.

Without a penalty p would shrink to 0, so the loss gets the paper's KL term divided by the
training-set size N (the model builder passes N through `bind_model`):
    weight:  l^2 / (2N) * ||W||^2 / (1 - p)   (W: the weights reading this layer's output)
    dropout: -dropout_reg * K / N * H(p)      (K: units per example, H: Bernoulli entropy)
with prior length-scale l = `dropout.length_scale`. The learned p is logged per layer in
metrics.csv (columns p.<module name>).
"""

import math

import torch
from torch import nn

from dropbench.dropout.base import Factories
from dropbench.errors import DropbenchError

EPS = 1e-7  # keeps the logs finite at u or p in {0, 1}


def concrete_dropout(x: torch.Tensor, p: torch.Tensor, temperature: float) -> torch.Tensor:
    """x with a relaxed Bernoulli(p) drop mask, survivors scaled by 1/(1-p); p: 0-d tensor."""
    u = torch.rand_like(x)
    logit = (torch.log(p + EPS) - torch.log(1 - p + EPS) + torch.log(u + EPS)
             - torch.log(1 - u + EPS))
    drop = torch.sigmoid(logit / temperature)
    return x * (1 - drop) / (1 - p)


def bernoulli_entropy(p: torch.Tensor) -> torch.Tensor:
    return -(p * torch.log(p + EPS) + (1 - p) * torch.log(1 - p + EPS))


class ConcreteDropout(nn.Module):
    def __init__(self, p: float, temperature: float = 0.1, length_scale: float = 1e-2,
                 dropout_reg: float = 1.0):
        super().__init__()
        if temperature <= 0 or length_scale < 0 or dropout_reg < 0:
            raise DropbenchError(
                f"concrete dropout needs dropout.temperature > 0 (got {temperature}), "
                f"dropout.length_scale >= 0 ({length_scale}), dropout.dropout_reg >= 0 "
                f"({dropout_reg})")
        self.p_logit = nn.Parameter(torch.tensor(math.log(p / (1 - p))))  # p: initial rate
        self.temperature, self.length_scale = temperature, length_scale
        self.dropout_reg = dropout_reg
        self.n_train = None  # training-set size, from bind_model
        self.units = None  # K: features per example, seen at the first forward
        self._reader = []  # the weight layer that reads our output; a list so it is no submodule

    @property
    def p(self) -> torch.Tensor:
        return torch.sigmoid(self.p_logit)

    def bind_model(self, model: nn.Module, data) -> None:
        """Find the first Linear/Conv registered after this module (the next layer in a
        feed-forward net) and the training-set size."""
        self.n_train = len(data.train)
        seen_self = False
        for m in model.modules():
            if m is self:
                seen_self = True
            elif seen_self and isinstance(m, (nn.Linear, nn.modules.conv._ConvNd)):
                self._reader = [m]
                return

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.units = x[0].numel() if x.dim() > 1 else x.numel()
        if not self.training:
            return x
        return concrete_dropout(x, self.p, self.temperature)

    def regularizer(self) -> torch.Tensor:
        if self.n_train is None:
            raise DropbenchError("concrete dropout needs the training-set size; build the model "
                                 "with dropbench.models.build_model")
        p = self.p
        penalty = -self.dropout_reg * (self.units or 0) * bernoulli_entropy(p)
        if self._reader:
            weight = self._reader[0].weight
            penalty = penalty + self.length_scale**2 / 2 * weight.pow(2).sum() / (1 - p)
        return penalty / self.n_train

    def logged_values(self) -> dict:
        return {"p": self.p.item()}

    def extra_repr(self) -> str:
        return f"p={self.p.item():.4g}, temperature={self.temperature}"


FACTORIES = {"concrete": Factories(
    activation=lambda p, cfg: ConcreteDropout(p, cfg.temperature, cfg.length_scale,
                                              cfg.dropout_reg))}
