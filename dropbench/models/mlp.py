"""Fully connected net with dropout on the input and after every hidden layer: a classifier
(one output per class), or a regressor (one output) when the data is a regression, which then
carries the weight prior's L2 penalty (models/prior.py)."""

import math

from torch import nn

from dropbench.dropout import make_dropout, make_linear, plan_rates
from dropbench.errors import DropbenchError
from dropbench.models.places import mlp_places
from dropbench.models.prior import penalty, penalty_coefficients, weight_penalties

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "selu": nn.SELU}


def activation_module(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise DropbenchError(
            f"model.activation={name!r} is unknown; choose one of {', '.join(ACTIVATIONS)}"
        )
    return ACTIVATIONS[name]()


class MLP(nn.Module):
    sequential = "net"  # forward(x) is self.net(x): a stack may run the layers as a chain

    def __init__(self, in_features: int, num_classes: int, model_cfg, dropout_cfg):
        super().__init__()
        hidden, activation = model_cfg.hidden, model_cfg.activation
        places = mlp_places(model_cfg)
        rates = plan_rates(model_cfg.name, places, dropout_cfg)
        layers = [nn.Flatten(), make_dropout(dropout_cfg, rates["input"][0], places[0])]
        width = in_features
        for out, p in zip(hidden, rates["hidden"], strict=True):
            layers += [
                make_linear(dropout_cfg, width, out, p, places[1]),
                activation_module(activation),
                make_dropout(dropout_cfg, p, places[1]),
            ]
            width = out
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)
        if activation == "selu":
            lecun_normal_(self)
        self.l2_terms: list = []  # (layer, reg) of the weight prior; regressions set it

    def regularizer(self):
        """The weight prior's L2 term, added to the training loss (dropout/hooks.py)."""
        return penalty(self.l2_terms) if self.l2_terms else 0.0

    def l2_coefficients(self) -> dict[str, float]:
        """The regularizer as data: {parameter name: reg} with the term sum(reg * W**2), so a
        stack of members (dropbench/sweep/stackable.py) adds each member's own prior."""
        return penalty_coefficients(self, self.l2_terms)

    def forward(self, x):  # (B, C, H, W) or (B, D) -> (B, num_classes)
        return self.net(x)


def lecun_normal_(model: nn.Module) -> None:
    """SELU's self-normalisation assumes weights ~ N(0, 1/fan_in) (Klambauer et al. 2017)."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 1.0 / math.sqrt(m.in_features))
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def build_mlp(model_cfg, dropout_cfg, data) -> MLP:
    if any(h < 1 for h in model_cfg.hidden):
        raise DropbenchError(f"model.hidden={list(model_cfg.hidden)} needs widths >= 1")
    in_features = math.prod(data.input_shape)
    if data.task == "regress":
        model = MLP(in_features, data.num_outputs, model_cfg, dropout_cfg)
        model.l2_terms = weight_penalties(model.net, data.lengthscale, len(data.train),
                                          data.tau)
        return model
    return MLP(in_features, data.num_classes, model_cfg, dropout_cfg)
