"""Optional methods a dropout module may define; the trainer calls them through these helpers.

- `set_epoch(epoch, epochs)`: schedules that depend on training progress (DropBlock's ramp).
- `regularizer()`: a loss term added to the training loss (concrete dropout's rate penalty).
- `logged_values()`: {name: float} written into metrics.csv each epoch (a learned rate).
- `bind_model(model, data)`: called once after the model is built (concrete dropout finds the
  layer that reads its output and the training-set size).
- attribute `samples_in_eval = True`: the module is stochastic in eval mode on purpose
  (DropConnect's Gaussian inference); `eval.mode=mc` leaves it in eval mode.
"""

from torch import nn


def set_epoch(model: nn.Module, epoch: int, epochs: int) -> None:
    for m in model.modules():
        if hasattr(m, "set_epoch"):
            m.set_epoch(epoch, epochs)


def bind_model(model: nn.Module, data) -> None:
    for m in model.modules():
        if hasattr(m, "bind_model"):
            m.bind_model(model, data)


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
