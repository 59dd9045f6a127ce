"""Each member's own optimiser, applied to stacked parameters (K, ...) in a few vectorised
operations: torch.optim's SGD (momentum, Nesterov, weight decay), Adam and AdamW (betas, eps,
weight decay) with every hyperparameter a (K,) tensor, plus the max-norm projection of
engine/optim.py with each member's own radius.

The state starts from the members' torch optimisers (a resumed member's momentum buffers or
Adam moments) and goes back to them with `write_back`, so a member's checkpoint holds the state
its lone run's optimiser would. When every member has the same SGD settings, one call of
torch's fused SGD over the whole stack does each member's update exactly as its lone run does.
"""

import torch
from torch.optim.sgd import sgd as torch_sgd

from dropbench.engine.optim import project_onto_ball
from dropbench.sweep.stackable import optimizer_kind


def per_member(values, like: torch.Tensor) -> torch.Tensor:
    """(K,) values as a tensor that broadcasts against a stacked tensor (K, ...)."""
    t = torch.as_tensor(values, dtype=like.dtype, device=like.device)
    return t.view(-1, *[1] * (like.dim() - 1))


class StackedOptimizer:
    def __init__(self, params: list[torch.Tensor], optimizers: list[torch.optim.Optimizer],
                 max_norms: list[float | None], constrained: list[int],
                 transposed: set[int] = frozenset()):
        """params: the stacked parameters in the members' model.parameters() order;
        optimizers: each member's torch optimiser over its own model; constrained: indices
        (into params) of the weights max-norm constrains; transposed: indices of the
        parameters stacked as (K, in, out), the transpose of a member's (out, in)."""
        kinds = [optimizer_kind(o) for o in optimizers]
        families = {"adam" if kind == "adamw" else kind for kind in kinds}
        if len(families) != 1 or None in families:
            raise ValueError(f"the stack needs sgd for every member or adam/adamw for every "
                             f"member, got {sorted(map(str, set(kinds)))}")
        self.kind = families.pop()
        self.decoupled = [kind == "adamw" for kind in kinds]  # AdamW's weight decay
        self.params, self.optimizers = params, optimizers
        # read at every step: the members' LR schedulers set their lr there
        self.groups = [o.param_groups[0] for o in optimizers]
        self.max_norms, self.constrained, self.transposed = max_norms, constrained, transposed
        self.fused = True
        # Adam's moments live in one (K, P) tensor per name, every parameter's state a view
        # of its columns: the update is then a few operations over all parameters at once
        if self.kind == "sgd":
            self.state = {"momentum_buffer": [torch.zeros_like(p) for p in params]}
        else:
            self.sizes = [p[0].numel() for p in params]
            self.flat = {name: params[0].new_zeros(len(optimizers), sum(self.sizes))
                         for name in self.state_names}
            self.state = {name: [view.view_as(p) for view, p in zip(
                flat.split(self.sizes, dim=1), params, strict=True)]
                for name, flat in self.flat.items()}
        self._adam_hyper: tuple[list, dict] | None = None  # (the lrs it was made for, tensors)
        self.steps = torch.zeros(len(optimizers))
        for k, optimizer in enumerate(optimizers):
            self._load(k, optimizer)

    @property
    def state_names(self) -> tuple[str, ...]:
        return ("momentum_buffer",) if self.kind == "sgd" else ("exp_avg", "exp_avg_sq")

    def _members_params(self, optimizer) -> list:
        return optimizer.param_groups[0]["params"]

    @torch.no_grad()
    def _load(self, k: int, optimizer) -> None:
        for i, p in enumerate(self._members_params(optimizer)):
            state = optimizer.state.get(p, {})
            for name in self.state_names:
                if state.get(name) is not None:
                    value = state[name]
                    self.state[name][i][k] = value.t() if i in self.transposed else value
            if "step" in state:
                self.steps[k] = float(state["step"])

    @torch.no_grad()
    def write_back(self, k: int) -> None:
        """Member k's state into its torch optimiser, as that optimiser would hold it."""
        optimizer = self.optimizers[k]
        if self.kind == "sgd" and self.groups[k]["momentum"] == 0:
            return  # torch.optim.SGD keeps no buffer without momentum
        for i, p in enumerate(self._members_params(optimizer)):
            state = optimizer.state[p]
            for name in self.state_names:
                value = self.state[name][i][k]
                value = value.t() if i in self.transposed else value
                state[name] = value.clone(memory_format=torch.contiguous_format)
            if self.kind != "sgd":  # fused Adam keeps its step on the parameter's device
                device = p.device if optimizer.param_groups[0].get("fused") else "cpu"
                state["step"] = torch.tensor(float(self.steps[k]), dtype=torch.float32,
                                             device=device)

    def hyper(self, key: str, like: torch.Tensor) -> torch.Tensor:
        return per_member([g[key] for g in self.groups], like)

    # --- the update -----------------------------------------------------------------------
    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        if self.kind == "sgd":
            self._sgd()
        else:
            self._adam()
        for p in self.params:
            p.grad = None

    def _sgd(self) -> None:
        keys = ("lr", "momentum", "weight_decay", "nesterov")
        shared = {tuple(g[key] for key in keys) for g in self.groups}
        bufs, grads = self.state["momentum_buffer"], [p.grad for p in self.params]
        if len(shared) == 1:  # elementwise: one call over the stack is each member's update
            lr, momentum, weight_decay, nesterov = shared.pop()
            self._torch_sgd(self.params, grads, bufs, weight_decay=weight_decay,
                            momentum=momentum, lr=lr, dampening=0.0, nesterov=nesterov,
                            maximize=False)
            return
        for p, g, buf in zip(self.params, grads, bufs, strict=True):
            g = g.add(p * self.hyper("weight_decay", p))
            momentum = self.hyper("momentum", p)
            buf.mul_(momentum).add_(g)  # a zero buffer: the first step takes the gradient
            nesterov = self.hyper("nesterov", p).bool()
            g = torch.where(nesterov, g + momentum * buf, buf)  # momentum 0: buf is g
            p.sub_(g * self.hyper("lr", p))

    def _torch_sgd(self, *args, **kwargs) -> None:
        if self.fused:
            try:
                return torch_sgd(*args, fused=True, **kwargs)
            except RuntimeError:  # no fused kernel for this device or dtype
                self.fused = False
        torch_sgd(*args, **kwargs)

    def _adam_hyperparameters(self) -> dict[str, torch.Tensor]:
        """Each member's Adam settings as (K, 1) tensors, made again only when an lr changed
        (its LR schedule): the rest stay as the optimisers were built."""
        lrs = [g["lr"] for g in self.groups]
        if self._adam_hyper is None or self._adam_hyper[0] != lrs:
            like = self.flat["exp_avg"][:, :1]
            hyper = {key: per_member([g[key] for g in self.groups], like)
                     for key in ("lr", "weight_decay", "eps")}
            hyper["beta1"] = per_member([g["betas"][0] for g in self.groups], like)
            hyper["beta2"] = per_member([g["betas"][1] for g in self.groups], like)
            hyper["decoupled"] = per_member(self.decoupled, like)
            hyper["any_decay"] = any(g["weight_decay"] for g in self.groups)
            self._adam_hyper = (lrs, hyper)
        return self._adam_hyper[1]

    def _adam(self) -> None:
        """torch.optim.Adam / AdamW's update of every member at once, on the (K, P) columns
        of all parameters (the same arithmetic per element as torch's single-tensor Adam)."""
        h = self._adam_hyperparameters()
        k = len(self.groups)
        g = torch.cat([p.grad.reshape(k, -1) for p in self.params], dim=1)
        if h["any_decay"]:
            flat = torch.cat([p.reshape(k, -1) for p in self.params], dim=1)
            # Adam adds the L2 gradient; AdamW shrinks the weights (a factor of 1, a 0 term)
            g = g.add(flat * (h["weight_decay"] * (1 - h["decoupled"])))
            shrink = 1 - h["lr"] * h["weight_decay"] * h["decoupled"]
            for p in self.params:
                p.mul_(shrink.view(-1, *[1] * (p.dim() - 1)))
        m, v = self.flat["exp_avg"], self.flat["exp_avg_sq"]
        m.lerp_(g, 1 - h["beta1"])
        v.mul_(h["beta2"]).add_((1 - h["beta2"]) * g * g)
        step = self.steps.to(m.device, m.dtype).view(-1, 1)
        correction1, correction2 = 1 - h["beta1"] ** step, 1 - h["beta2"] ** step
        denom = (v.sqrt() / correction2.sqrt()).add_(h["eps"])
        update = (h["lr"] / correction1) * m / denom
        for p, columns in zip(self.params, update.split(self.sizes, dim=1), strict=True):
            p.sub_(columns.view_as(p))

    # --- max-norm ---------------------------------------------------------------------------
    @torch.no_grad()
    def apply_max_norm(self) -> torch.Tensor | None:
        """Each member's weight vectors projected onto its own ball (engine/optim's rule);
        (K,) counts of projected vectors, None when no member has a constraint."""
        if all(c is None for c in self.max_norms):
            return None
        counts = None
        for i in self.constrained:
            w = self.params[i]
            caps = per_member([c or float("inf") for c in self.max_norms], w)
            if i in self.transposed:  # (K, in, out): a unit's incoming weights are a column
                norms = torch.linalg.vector_norm(w, dim=1, keepdim=True)
            else:  # (K, out, ...): a unit's incoming weights are one row
                norms = torch.linalg.vector_norm(w.flatten(2), dim=2)
                norms = norms.view(*norms.shape, *[1] * (w.dim() - 2))
            over = project_onto_ball(w, norms, caps)
            n = over.flatten(1).sum(1)
            counts = n if counts is None else counts + n
        return counts
