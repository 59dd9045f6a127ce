"""Optional methods a dropout module may define; the trainer calls them through these helpers.

- `set_epoch(epoch, epochs)`: schedules that depend on training progress (DropBlock's ramp).
- `regularizer()`: a loss term added to the training loss (concrete dropout's rate penalty).
- `logged_values()`: {name: float} written into metrics.csv each epoch (a learned rate).
- `bind_model(model, data)`: called once after the model is built (concrete dropout finds the
  layer that reads its output and the training-set size).
- attribute `samples_in_eval = True`: the module is stochastic in eval mode on purpose
  (DropConnect's Gaussian inference); `eval.mode=mc` leaves it in eval mode.

A model built with `dropout.schedule` other than constant also carries a `RateSchedule`
(attach_schedule): at every training step (or epoch, `dropout.schedule_unit=epoch`) it sets
the rate `p` of every dropout module to its planned rate times the schedule's factor, before
the modules' own set_epoch (so DropBlock ramps the scheduled rate), and logs the rates in use.
"""

from torch import nn

from dropbench.dropout.schedule import rate_factor


class RateSchedule:
    """Scales the planned rate of every dropout module of a model by the schedule's factor.
    Every scheme module keeps its rate in `p` and reads it when called (describe.py), so one
    schedule serves every scheme whose rates are fixed (Declaration.scheduled)."""

    def __init__(self, model: nn.Module, schedule: str, until: float, unit: str):
        self.schedule, self.until, self.per_step = schedule, until, unit == "step"
        self.planned = [(m, m.p) for m in model.modules()
                        if getattr(m, "dropout_place", None) is not None]
        self.factor_sum, self.steps = 0.0, 0  # the factors the epoch's steps used so far
        self.current: float | None = None  # the factor the modules' rates hold now

    def set_epoch(self, epoch: int, epochs: int, steps: int = 1) -> None:
        """At the start of `epoch` of `epochs`, of `steps` each: the rate of its first step."""
        self.factor_sum, self.steps = 0.0, 0
        if self.per_step:
            epoch, epochs = epoch * steps, epochs * steps
        self.apply(rate_factor(self.schedule, self.until, epoch, epochs))

    def set_step(self, step: int, steps: int) -> None:
        """Step `step` (0-based) of the run's `steps`: per-step schedules move here."""
        if self.per_step:
            self.apply(rate_factor(self.schedule, self.until, step, steps))
            self.factor_sum, self.steps = self.factor_sum + self.current, self.steps + 1

    def apply(self, factor: float) -> None:
        if factor != self.current:
            for module, p in self.planned:
                module.p = p * factor  # exactly p at a factor of 1
        self.current = factor

    def logged_values(self) -> dict:
        """`rate_factor`, the mean factor over the epoch's steps, and per rate key the largest
        planned rate there times that mean: the rate the epoch used on average (metrics.csv)."""
        now = self.current if self.current is not None else 1.0
        factor = self.factor_sum / self.steps if self.steps else now
        values = {"rate_factor": factor}
        for module, p in self.planned:
            key = f"rate.{module.dropout_place.key}"
            values[key] = max(values.get(key, 0.0), float(p) * factor)
        return values


def attach_schedule(model: nn.Module, dropout_cfg) -> None:
    """Give `model` the run's rate schedule; a constant one (the default) attaches nothing, so
    such a run is the run without any schedule."""
    schedule = dropout_cfg.get("schedule", "constant")
    if schedule != "constant":
        model.dropout_schedule = RateSchedule(model, schedule, dropout_cfg.schedule_until,
                                              dropout_cfg.get("schedule_unit", "step"))


def schedule_of(model: nn.Module) -> RateSchedule | None:
    return getattr(model, "dropout_schedule", None)


def set_epoch(model: nn.Module, epoch: int, epochs: int, steps: int = 1) -> None:
    """The start of `epoch` (0-based) of `epochs` of `steps` training steps each."""
    if schedule_of(model) is not None:  # first: the modules' own schedules start from its rate
        schedule_of(model).set_epoch(epoch, epochs, steps)
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
    values = dict(schedule_of(model).logged_values()) if schedule_of(model) is not None else {}
    for name, m in model.named_modules():
        if hasattr(m, "logged_values"):
            for key, value in m.logged_values().items():
                values[f"{key}.{name}" if name else key] = float(value)
    return values
