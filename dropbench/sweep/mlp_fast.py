"""The classification MLP with standard dropout and SGD through the hand-written StackedMLP
(stacked.py: one batched product per layer, no vmap), behind the interface batch.py trains the
generic stack through (vmapped.StackedModel + stacked_optim.StackedOptimizer). It is the fast
path for the case it covers, which docs/batched.md measures against the generic stack; any
other model goes through the generic stack.
"""

import torch
from torch import nn

from dropbench.dropout.standard import BernoulliDropout
from dropbench.engine.tasks import ClassificationTask
from dropbench.models.mlp import MLP
from dropbench.sweep.stackable import optimizer_kind
from dropbench.sweep.stacked import MemberSettings, StackedMLP


def rate(module: nn.Module) -> float:
    return module.p if isinstance(module, BernoulliDropout) else 0.0


def mlp_layout(model: nn.Module):
    """(linears, activation, input rate, hidden rates) of a dropbench MLP whose dropout is
    standard or none; None for any other model."""
    if type(model) is not MLP:
        return None
    layers = list(model.net)
    body = layers[2:-1]  # Flatten, input dropout | (Linear, activation, dropout) x n | Linear
    if len(body) % 3 or not all(isinstance(m, (nn.Identity, BernoulliDropout))
                                for m in [layers[1], *body[2::3]]):
        return None
    linears = [*body[0::3], layers[-1]]
    if not all(type(m) is nn.Linear for m in linears):
        return None
    activations = {type(m) for m in body[1::3]}
    if len(activations) > 1:
        return None
    activation = body[1] if body else nn.Identity()
    return linears, activation, rate(layers[1]), [rate(m) for m in body[2::3]]


def fast_path_applies(runs) -> bool:
    """Every member a classification MLP with standard dropout (or none) trained by SGD with
    one Nesterov setting."""
    return (all(type(r.task) is ClassificationTask and optimizer_kind(r.optimizer) == "sgd"
                and mlp_layout(r.model) is not None for r in runs)
            and len({r.optimizer.param_groups[0]["nesterov"] for r in runs}) == 1)


class FastMLPStack:
    """StackedMLP as a stack and its optimiser: the methods batch.py calls on both."""

    def __init__(self, runs, generators: list[torch.Generator]):
        self.runs = runs
        layouts = [mlp_layout(r.model) for r in runs]
        settings = []
        for run, (_, _, p_input, p_hidden), generator in zip(runs, layouts, generators,
                                                            strict=True):
            group = run.optimizer.param_groups[0]
            settings.append(MemberSettings(p_input, p_hidden, group["lr"], group["momentum"],
                                           group["weight_decay"], run.cfg.optim.max_norm,
                                           generator))
        self.mlp = StackedMLP([layout[0] for layout in layouts], layouts[0][1], settings,
                              runs[0].optimizer.param_groups[0]["nesterov"])
        self.linears = [layout[0] for layout in layouts]
        for k, run in enumerate(runs):
            state = run.optimizer.state
            self.mlp.set_momentum_buffers(k, [state.get(p, {}).get("momentum_buffer")
                                              for p in self._member_params(k)])

    @property
    def size(self) -> int:
        return self.mlp.size

    def _member_params(self, k: int) -> list[nn.Parameter]:
        """In StackedMLP.parameters() order: every weight, then every bias."""
        return [m.weight for m in self.linears[k]] + [m.bias for m in self.linears[k]]

    # --- as the stack ---------------------------------------------------------------------
    def draw_noise(self, batch_size: int, dtype=torch.float32) -> dict:
        return {}  # StackedMLP draws each member's masks from its generator in its forward

    def task_step(self, task, x, y, train: bool, noise=None, shared_batch: bool = False):
        if shared_batch:
            x, y = x.expand(self.size, *x.shape), y.expand(self.size, *y.shape)
        return self.mlp.losses(x, y, train)

    def penalty(self) -> None:
        return None  # a classification MLP declares no L2 term (fast_path_applies)

    def member_tensors(self, k: int) -> list[torch.Tensor]:
        """Member k's parameters in its model.parameters() order."""
        params, _ = self.mlp.member_tensors(k)
        by_id = dict(zip(map(id, self._member_params(k)), params, strict=True))
        return [by_id[id(p)] for p in self.runs[k].model.parameters()]

    # --- as the optimiser -----------------------------------------------------------------
    def step(self) -> None:
        for member, run in zip(self.mlp.settings, self.runs, strict=True):
            member.lr = run.optimizer.param_groups[0]["lr"]  # its LR schedule's
        self.mlp.sgd_step()

    def apply_max_norm(self):
        return self.mlp.apply_max_norm()

    @torch.no_grad()
    def write_back(self, k: int) -> None:
        optimizer = self.runs[k].optimizer
        if optimizer.param_groups[0]["momentum"] == 0:
            return  # torch.optim.SGD keeps buffers only with momentum
        _, buffers = self.mlp.member_tensors(k)
        for p, buf in zip(self._member_params(k), buffers, strict=True):
            optimizer.state[p]["momentum_buffer"] = buf.clone(
                memory_format=torch.contiguous_format)
