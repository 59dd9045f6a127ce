"""Optimisers, LR schedules and the explicit regularisers compared against dropout:
L2 (weight decay), L1 and the max-norm constraint of Srivastava et al. 2014; NT-ASGD for the
AWD-LSTM recipe."""

import functools
import inspect
from contextlib import contextmanager

import torch
from torch import nn

from dropbench import registry
from dropbench.errors import DropbenchError


def weight_matrices(model: nn.Module):
    """Weights of the linear and conv layers (not biases, not norm layers)."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd)):
            yield m.weight


def build_optimizer(cfg, model: nn.Module) -> torch.optim.Optimizer:
    """The registered optimiser `cfg.name` (dropbench/optimizers.py: the built-ins) over the
    model's parameters."""
    build = registry.OPTIMIZERS.get(cfg.name, "optim.name").load()
    return build(cfg, list(model.parameters()))


def sgd(cfg, params) -> torch.optim.Optimizer:
    return fused_if_supported(eager(torch.optim.SGD), params, lr=cfg.lr, momentum=cfg.momentum,
                              nesterov=cfg.nesterov, weight_decay=cfg.weight_decay)


def adam(cfg, params) -> torch.optim.Optimizer:
    return fused_if_supported(eager(torch.optim.Adam), params, lr=cfg.lr,
                              betas=(cfg.beta1, cfg.beta2), eps=cfg.eps,
                              weight_decay=cfg.weight_decay)


def adamw(cfg, params) -> torch.optim.Optimizer:
    return fused_if_supported(eager(torch.optim.AdamW), params, lr=cfg.lr,
                              betas=(cfg.beta1, cfg.beta2), eps=cfg.eps,
                              weight_decay=cfg.weight_decay)


def ntasgd(cfg, params) -> torch.optim.Optimizer:
    if cfg.momentum != 0:
        raise DropbenchError(f"optim=ntasgd is plain averaged SGD; set optim.momentum=0 "
                             f"(got {cfg.momentum})")
    return eager(NTASGD)(params, lr=cfg.lr, weight_decay=cfg.weight_decay, nonmono=cfg.nonmono)


# Optimizer methods that torch wraps so that torch.compile does not trace them.
_COMPILE_GUARDED = ("add_param_group", "zero_grad", "state_dict", "load_state_dict")


@functools.cache
def eager(optimizer_class: type) -> type:
    """`optimizer_class` without the wrappers torch puts around its methods for torch.compile.

    Those wrappers import torch._dynamo when first called (step() on every call): 1.5 s of
    CPU time on this machine, as much again as `import torch`, paid by every run before its
    first step. dropbench compiles model forwards only, never code that calls the optimiser,
    so the wrappers guard nothing here. The subclass runs the same update functions under
    no_grad (what the step wrapper does for a non-differentiable optimiser); hooks, LR
    schedulers, fused kernels and the state_dict format are the parent's.
    """
    step = inspect.unwrap(optimizer_class.step)

    def eager_step(self, closure=None):
        with torch.no_grad():
            return step(self, closure)

    methods = {name: inspect.unwrap(getattr(optimizer_class, name)) for name in _COMPILE_GUARDED}
    return type(optimizer_class.__name__, (optimizer_class,), {**methods, "step": eager_step,
                                                               "__module__": __name__})


def fused_if_supported(optimizer_class, params, **kw) -> torch.optim.Optimizer:
    """The optimiser with fused=True (the whole update of a parameter in one kernel) where this
    torch supports it for the parameters' device, else its default implementation. On the
    CPU the default runs several passes per parameter: an SGD-momentum step of the 1.9M-weight
    MNIST MLP took 0.77 ms unfused and 0.50 ms fused on one core (docs/benchmarks.md)."""
    try:
        return optimizer_class(params, fused=True, **kw)
    except (RuntimeError, ValueError, TypeError):  # e.g. an older torch without CPU kernels
        return optimizer_class(params, **kw)


def build_scheduler(cfg, optimizer, epochs: int):
    if cfg.schedule == "none":
        return None
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size,
                                               gamma=cfg.gamma)
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))
    if cfg.schedule == "decay_after":
        # Zaremba et al. 2014: decay_after epochs at the initial lr, then lr / lr_decay each
        # epoch. Factor for the epoch after `done` completed ones (the scheduler's counter).
        decay, after = cfg.lr_decay, cfg.decay_after
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda done: decay ** -max(0, done + 1 - after))
    raise DropbenchError(f"optim.schedule={cfg.schedule!r} is unknown; choose none, step, "
                         f"cosine or decay_after")


def l1_penalty(model: nn.Module, strength: float) -> torch.Tensor | float:
    if strength == 0:
        return 0.0
    return strength * sum(w.abs().sum() for w in weight_matrices(model))


def project_onto_ball(w: torch.Tensor, norms: torch.Tensor, c) -> torch.Tensor:
    """torch.renorm's rule in place: scale w by c / (norm + 1e-7) where its norm exceeds c.
    `norms` (and c, a number or a tensor) broadcast against w; returns the mask of the
    vectors it projected. Shared by the trainer and the stacked sweep model."""
    over = norms > c
    w.mul_(torch.where(over, c / (norms + 1e-7), 1.0))
    return over


@torch.no_grad()
def largest_weight_norm(model: nn.Module) -> float:
    """The largest norm of a unit's incoming weight vector: what max-norm compares to c."""
    return max((torch.linalg.vector_norm(w.flatten(1), dim=1).max().item()
                for w in weight_matrices(model)), default=0.0)


@torch.no_grad()
def apply_max_norm(model: nn.Module, c: float | None) -> torch.Tensor | None:
    """Project each unit's incoming weight vector back onto the ball of radius c. Returns how
    many vectors it projected, as a tensor on the device (no sync per step); None without a
    constraint."""
    if c is None:
        return None
    projected = None
    for w in weight_matrices(model):
        norms = torch.linalg.vector_norm(w.flatten(1), dim=1)
        over = project_onto_ball(w, norms.view(-1, *[1] * (w.dim() - 1)), c)
        projected = over.sum() if projected is None else projected + over.sum()
    return projected


class NTASGD(torch.optim.Optimizer):
    """Non-monotonically triggered averaged SGD (Merity et al. 2017, algorithm 1).

    Plain SGD (with L2 weight decay) until a validation check is worse than the best of all
    checks but the last `nonmono`; from then on the steps stay the same but the optimiser also
    keeps the running average of the iterates since the switch, and that average is the model
    that gets evaluated and saved (`evaluation_weights`). The trainer reports one check per
    epoch (`observe`). The check history and the switch live in the param group, the averages
    in the per-parameter state, so `state_dict()` carries everything a resume needs."""

    def __init__(self, params, lr: float, weight_decay: float = 0.0, nonmono: int = 5):
        defaults = {"lr": lr, "weight_decay": weight_decay, "nonmono": nonmono,
                    "val_history": [], "averaging_since": None, "averaged_steps": 0}
        super().__init__(params, defaults)

    @property
    def averaging(self) -> bool:
        return self.param_groups[0]["averaging_since"] is not None

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            for p in params:
                p.add_(p.grad + group["weight_decay"] * p, alpha=-group["lr"])
            if group["averaging_since"] is None:
                continue
            group["averaged_steps"] += 1
            weight = 1.0 / group["averaged_steps"]  # uniform mean of the iterates since the switch
            for p in params:
                state = self.state[p]
                if "average" not in state:
                    state["average"] = p.detach().clone()
                state["average"].lerp_(p, weight)
        return loss

    def observe(self, val_loss: float, check: int) -> bool:
        """Record validation check number `check`; switch to averaging (returns True) when it
        is worse than the best of all checks before the last `nonmono`."""
        group = self.param_groups[0]
        history, n = group["val_history"], group["nonmono"]
        switch = (not self.averaging and len(history) > n and val_loss > min(history[:-n]))
        history.append(val_loss)
        if switch:
            for g in self.param_groups:
                g["averaging_since"] = check
        return switch

    def swap_average(self) -> None:
        """Exchange the parameters with their running averages (call twice to undo)."""
        with torch.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    average = self.state[p].get("average")
                    if average is not None:
                        swapped = p.detach().clone()
                        p.copy_(average)
                        average.copy_(swapped)


@contextmanager
def evaluation_weights(optimizer):
    """Inside: the weights to evaluate and save, i.e. NT-ASGD's running average once it
    averages, else the trained weights as they are."""
    if not getattr(optimizer, "averaging", False):
        yield
        return
    optimizer.swap_average()
    try:
        yield
    finally:
        optimizer.swap_average()


@contextmanager
def scaled_lr(optimizer, scale: float):
    """Every group's lr multiplied by `scale` inside (variable-length BPTT: a window of length
    L trains at lr * L / bptt, Merity et al. 2017)."""
    if scale == 1.0:
        yield
        return
    saved = [g["lr"] for g in optimizer.param_groups]
    for g in optimizer.param_groups:
        g["lr"] *= scale
    try:
        yield
    finally:
        for g, lr in zip(optimizer.param_groups, saved, strict=True):
            g["lr"] = lr
