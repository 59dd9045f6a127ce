"""Optional methods a dropout module may define; the trainer calls them through these helpers.

- `set_epoch(epoch, epochs)`: schedules that depend on training progress (DropBlock's ramp).
- `regularizer()`: a loss term added to the training loss (concrete dropout's rate penalty).
- `logged_values()`: {name: float} written into metrics.csv each epoch (a learned rate).
"""

from torch import nn


def set_epoch(model: nn.Module, epoch: int, epochs: int) -> None:
    for m in model.modules():
        if hasattr(m, "set_epoch"):
            m.set_epoch(epoch, epochs)


def regularization(model: nn.Module):
    terms = [m.regularizer() for m in model.modules() if hasattr(m, "regularizer")]
    return sum(terms) if terms else 0.0


def logged_values(model: nn.Module) -> dict:
    values = {}
    for name, m in model.named_modules():
        if hasattr(m, "logged_values"):
            for key, value in m.logged_values().items():
                values[f"{key}.{name}" if name else key] = float(value)
    return values
