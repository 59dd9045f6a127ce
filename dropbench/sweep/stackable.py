"""What a stacked model (dropbench/sweep/vmapped.py) can train, decided at this one point from
the members' built models: the same model a lone run builds (any registered family), whose
members differ at most in their dropout rates.

The stack runs one copy of the model with every member's parameters stacked (torch.func), and
each member's dropout noise drawn outside it from the member's own stream. So a model stacks
when
- its members have the same parameters (names and shapes) and the same modules, except that a
  member may have a dropout module where another, at rate 0, has none (nn.Identity);
- every dropout module draws its noise as one tensor that multiplies its input
  (RateDropout.noise: standard and spatial dropout), which the stack can draw and pass in;
- nothing keeps state the stack would have to update per member inside the forward: no
  buffers (BatchNorm's running statistics), no module hooks of the trainer (a schedule of its
  own, a loss term that is not 0, logged values: dropout/hooks.py), except a loss term the
  module also declares as data: `l2_coefficients()` -> {parameter name: reg} for a term
  sum(reg * W**2) (the regression's weight prior, models/prior.py), which the stack adds per
  member with each member's own coefficients.
A job whose model does not stack runs alone, after one line saying which of these failed.
"""

import torch
from torch import nn

# Trainer hooks (dropout/hooks.py) a module may define: the stacked epoch calls none of them.
TRAINER_HOOKS = ("set_epoch", "regularizer", "logged_values", "samples_in_eval")


def is_noise_module(module: nn.Module) -> bool:
    """A dropout module whose noise the stack can draw outside and pass in."""
    return getattr(module, "noise", None) is not None and hasattr(module, "p")


def is_dropout_place(module: nn.Module) -> bool:
    """What a model builds at a place for dropout: the scheme's module or, at rate 0, none."""
    return isinstance(module, nn.Identity) or is_noise_module(module)


def adds_nothing(module: nn.Module) -> bool:
    """A regularizer hook that adds no term (the MLP's weight prior outside a regression)."""
    term = module.regularizer()
    return not isinstance(term, torch.Tensor) and term == 0


def stacks_regularizer(module: nn.Module) -> bool:
    """A regularizer the stack reproduces: none, or one declared as L2 coefficients."""
    return adds_nothing(module) or callable(getattr(module, "l2_coefficients", None))


def l2_coefficients(model: nn.Module) -> dict[str, float]:
    """{parameter name in model.named_parameters(): reg} of every declared L2 term of the
    model's modules: the regularizer() the lone run adds is sum(reg * p**2) over these."""
    out: dict[str, float] = {}
    for path, module in model.named_modules():
        declared = getattr(module, "l2_coefficients", None)
        if callable(declared):
            for name, reg in declared().items():
                full = f"{path}.{name}" if path else name
                out[full] = out.get(full, 0.0) + float(reg)
    return out


def why_not_stacked(models: list[nn.Module]) -> str | None:
    """Why these members' models cannot train as one stack, in a few words; None if they can."""
    first = models[0]
    shapes = {name: p.shape for name, p in first.named_parameters()}
    for model in models[1:]:
        if {name: p.shape for name, p in model.named_parameters()} != shapes:
            return "the members' models have different parameters"
    for name, _ in first.named_buffers():
        owner = type(first.get_submodule(name.rpartition(".")[0])).__name__
        return (f"{owner} keeps running state ({name}), which the stack does not update per "
                f"member")
    per_path = [dict(m.named_modules()) for m in models]
    if any(d.keys() != per_path[0].keys() for d in per_path[1:]):
        return "the members' models have different modules"
    for path, module in per_path[0].items():
        modules = [d[path] for d in per_path]
        for m in modules:
            if getattr(m, "dropout_scheme", None) is not None and not is_noise_module(m):
                return (f"dropout={m.dropout_scheme} at {path or 'the model'} draws its noise "
                        f"inside the layer; the stack draws only noise that multiplies an input")
        hooks = [h for h in TRAINER_HOOKS for m in modules if hasattr(m, h)
                 and not (h == "regularizer" and stacks_regularizer(m))]
        if hooks:
            return (f"{path or 'the model'} ({type(module).__name__}) has {hooks[0]}, which the "
                    f"stack does not call")
        if all(is_dropout_place(m) for m in modules):
            kinds = {type(m) for m in modules if is_noise_module(m)}
            if len(kinds) > 1:
                return f"the members use different dropout modules at {path}"
            continue
        if any(type(m) is not type(module) for m in modules):
            return f"the members build different modules at {path}"
    if getattr(first, "dropout_schedule", None) is not None:
        return "a dropout rate schedule, which the stack does not follow per member"
    return None


def noise_slots(models: list[nn.Module]) -> list[str]:
    """The module paths where some member has a noise module (the others: rate 0)."""
    return [path for path, module in models[0].named_modules()
            if path and any(is_noise_module(m.get_submodule(path)) for m in models)]


def optimizer_kind(optimizer: torch.optim.Optimizer) -> str | None:
    """'sgd', 'adam' or 'adamw' for the optimisers the stack implements per member."""
    group = optimizer.param_groups[0]
    if group.get("maximize") or group.get("amsgrad") or group.get("dampening", 0):
        return None
    if isinstance(optimizer, torch.optim.AdamW):
        return "adamw"
    if isinstance(optimizer, torch.optim.Adam):
        return "adam"
    if isinstance(optimizer, torch.optim.SGD):
        return "sgd"
    return None
