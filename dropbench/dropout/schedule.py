"""Early and late dropout (Liu, Xu, Jin, Shen, Darrell 2023, "Dropout Reduces Underfitting"):
every rate of a run follows one schedule over training, whatever the scheme. Liu et al. find
that dropout used only at the start of training (early) lowers the training loss of models
that underfit, and dropout switched on only later (late) regularises models that overfit.

`rate_factor` is the multiplier of every planned rate after `done` of `total` training steps
(or epochs, with `dropout.schedule_unit=epoch`); the cutoff is `until` (a fraction in (0, 1])
of the total. Liu et al. count iterations, the default unit here. The factor depends on the
position alone, so a resumed run needs no state of its own to get it right. Torch-free:
validation reads SCHEDULES.
"""

SCHEDULES = ("constant", "early", "late", "linear_down", "linear_up")
UNITS = ("step", "epoch")  # what the schedule counts


def rate_factor(schedule: str, until: float, done: int, total: int) -> float:
    """constant: 1. early: 1 before the cutoff, then 0; late: 0 before it, then 1.
    linear_down: from 1 at the start falling linearly to 0 at the cutoff, then 0 (Liu et al.'s
    linearly decreasing early dropout); linear_up: from 0 rising to 1 at the cutoff, then 1."""
    cutoff = until * total
    if schedule == "constant":
        return 1.0
    if schedule in ("early", "late"):
        return float((done < cutoff) == (schedule == "early"))
    progress = min(1.0, done / cutoff)
    if schedule == "linear_down":
        return 1.0 - progress
    if schedule == "linear_up":
        return progress
    raise ValueError(f"unknown dropout schedule {schedule!r}; one of {', '.join(SCHEDULES)}")
