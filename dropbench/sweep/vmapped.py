"""K members' models trained as one: the model a lone run builds, with every member's
parameters stacked along a new first dimension (torch.func.stack_module_state) and one forward
of the task's step for all members at once (torch.func.vmap over functional_call).

Dropout: where a member has a dropout module, the shared template has a `NoiseSlot`. Before
each step the stack draws every member's noise from the member's own generator, in the order
its lone run's forward would draw it (recorded once by a probe pass) and with the module's own
`noise` function (dropout/base.py), and passes it in: with the lone run's generator state a
member's masks are its lone run's, bit for bit. A member at rate 0 somewhere draws nothing
there (its lone run builds no module) and gets a factor of 1. The rates are read from the
member's own modules, so members differ in them freely.

The loss and scores come from the task (`task.step(model, batch)` under vmap), so the stack
trains whatever a task trains: each member gets the mean loss of its own batch and the task's
on-device sums. What stacks at all is decided in stackable.py.

A model whose forward is one nn.Sequential (it declares `sequential = "<attribute>"`, as the
MLP does) made only of linears, Flatten, noise slots and elementwise activations is run
as a chain of batched products instead of under vmap: the same arithmetic with a fraction of
vmap's per-step dispatch, which is most of a small network's step. The task's step then runs
under vmap on the outputs, or not at all where the task declares `score_outputs`, its scoring
written for member dims (the regression task's).
"""

import copy

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from dropbench.sweep.stackable import l2_coefficients, noise_slots

# Layers that act on a stacked (K, B, ...) tensor as they would on one member's (B, ...):
# elementwise activations, and nothing else of their own.
ELEMENTWISE = (nn.Identity, nn.ReLU, nn.LeakyReLU, nn.ELU, nn.SELU, nn.GELU, nn.SiLU,
               nn.Tanh, nn.Sigmoid, nn.Softplus)


class NoiseSlot(nn.Module):
    """Multiplies its input by the member's noise handed in for this step (none: identity).
    In a probe pass it records the shape its input has per example."""

    def __init__(self):
        super().__init__()
        self.noise: torch.Tensor | None = None
        self.p = 0.0  # model code reading the rate sees none: the noise comes in `noise`
        self.recorded: list | None = None  # the probe's log of (slot, per-example shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.recorded is not None:
            self.recorded.append((self, tuple(x.shape[1:])))
            return x
        if not self.training or self.noise is None:
            return x
        return x * self.noise


class InputMajorLinear(nn.Module):
    """nn.Linear with its weight stored (in, out): stacked (K, in, out), the batched product
    runs without transposing a copy of every member's weights (about 1.2-1.4x faster on the
    CPU than nn.Linear's (out, in) under vmap)."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.weight = nn.Parameter(linear.weight.detach().t().contiguous())
        self.bias = linear.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2 and self.bias is not None:
            return torch.addmm(self.bias, x, self.weight)
        out = x @ self.weight
        return out if self.bias is None else out + self.bias


class StackedModel:
    def __init__(self, models: list[nn.Module], generators: list[torch.Generator],
                 example: torch.Tensor):
        """models: the members' models (they hold their current weights), generators: each
        member's dropout stream, example: one training input (1, ...) for the probe."""
        self.models, self.generators = list(models), list(generators)
        self.template = copy.deepcopy(models[0])
        self.slots: dict[str, NoiseSlot] = {}
        for path in noise_slots(models):
            parent, _, leaf = path.rpartition(".")
            slot = self.slots[path] = NoiseSlot()
            setattr(self.template.get_submodule(parent), leaf, slot)
        self.transposed: set[str] = set()  # parameters stacked as (K, in, out)
        for path, module in list(self.template.named_modules()):
            if type(module) is nn.Linear and path:
                parent, _, leaf = path.rpartition(".")
                setattr(self.template.get_submodule(parent), leaf, InputMajorLinear(module))
                self.transposed.add(f"{path}.weight")
        self.names = [name for name, _ in models[0].named_parameters()]
        self.order = self._probe(example)
        with torch.no_grad():
            self.params, self.buffers = stack_module_state(self.models)
            for name in self.transposed:
                self.params[name] = (self.params[name].detach().transpose(1, 2).contiguous()
                                     .requires_grad_())
        self.l2 = self._l2_coefficients()
        # the gradient's factors 2 reg_k, shaped to broadcast over each stacked weight
        self.l2_gradient_factors = {}
        for name, reg in self.l2.items():
            shape = (-1, *[1] * (self.params[name].dim() - 1))
            self.l2_gradient_factors[name] = (2 * reg).view(shape)
        self._plan: list | None = None  # _noise_plan, once built
        self.chain = self._chain()

    @property
    def size(self) -> int:
        return len(self.models)

    def _probe(self, example: torch.Tensor) -> list[tuple[str, tuple]]:
        """The slots in the order a forward calls them, each with its per-example shape."""
        recorded: list = []
        for slot in self.slots.values():
            slot.recorded = recorded
        try:
            with torch.no_grad():
                self.template.train()
                self.template(example)
        finally:
            for slot in self.slots.values():
                slot.recorded = None
        path_of = {id(slot): path for path, slot in self.slots.items()}
        return [(path_of[id(slot)], shape) for slot, shape in recorded]

    def _chain(self) -> list[tuple[str, nn.Module]] | None:
        """(path, layer) of the template's declared sequential forward when every layer is a
        Flatten, a linear, a noise slot or an elementwise activation; else None (vmap)."""
        attribute = getattr(self.template, "sequential", None)
        body = getattr(self.template, attribute, None) if attribute else None
        if not isinstance(body, nn.Sequential):
            return None
        layers = [(f"{attribute}.{name}", m) for name, m in body.named_children()]
        if all(type(m) in (nn.Flatten, InputMajorLinear, NoiseSlot, *ELEMENTWISE)
               for _, m in layers):
            return layers
        return None

    def _chain_forward(self, x: torch.Tensor, noise: dict) -> torch.Tensor:
        """The chain on x (K, B, ...): member k's batch through member k's layers."""
        for path, layer in self.chain:
            if type(layer) is NoiseSlot:
                if self.template.training and path in noise:
                    x = x * noise[path]
            elif type(layer) is InputMajorLinear:
                weight, bias = self.params[f"{path}.weight"], self.params.get(f"{path}.bias")
                x = (torch.bmm(x, weight) if bias is None
                     else torch.baddbmm(bias.unsqueeze(1), x, weight))
            elif type(layer) is nn.Flatten:  # its dims shift by one past the member dim
                end = layer.end_dim if layer.end_dim < 0 else layer.end_dim + 1
                x = x.flatten(layer.start_dim + 1, end)
            else:
                x = layer(x)
        return x

    def uncalled_slots(self) -> list[str]:
        """Slots where a member drops (rate > 0) but the forward never calls the module: the
        model applies that rate some other way (fused into attention), which the stack
        cannot replay per member."""
        called = {path for path, _ in self.order}
        return [path for path in self.slots if path not in called
                and any(float(getattr(m.get_submodule(path), "p", 0.0)) > 0
                        for m in self.models)]

    def parameters(self) -> list[torch.Tensor]:
        """The stacked parameters (K, ...), in the members' model.parameters() order."""
        return [self.params[name] for name in self.names]

    def _l2_coefficients(self) -> dict[str, torch.Tensor]:
        """{parameter name: (K,) reg}: each member's declared L2 terms (its weight prior,
        which depends on its own rates, tau and training size); 0 where a member has none."""
        per_member = [l2_coefficients(m) for m in self.models]
        names = sorted(set().union(*per_member))
        device = self.params[self.names[0]].device if self.names else None
        return {name: torch.tensor([c.get(name, 0.0) for c in per_member], device=device,
                                   dtype=self.params[name].dtype) for name in names}

    @torch.no_grad()
    def add_penalty_gradients(self) -> None:
        """Add to the stacked gradients what member k's L2 terms reg_k * sum(W_k**2) add to
        its lone run's when back-propagated with its loss: 2 reg_k W_k, bit for bit the same
        (doubling is exact, so both round the one product), without their graph."""
        for name, factor in self.l2_gradient_factors.items():
            w = self.params[name]
            gradient = w * factor
            if w.grad is None:
                w.grad = gradient
            else:
                w.grad.add_(gradient)

    # --- noise ----------------------------------------------------------------------------
    def draw_noise(self, batch_size: int, dtype=torch.float32) -> dict[str, torch.Tensor]:
        """{slot: (K, batch_size, ...) noise} for one training step: member k's drawn from its
        generator in its lone forward's order; slots where no member drops are left out.
        Where every member drops with one module type that gives `stacked_noise`, one call
        draws all K (each row from its member's generator, bit for bit its `noise`)."""
        device = self.params[self.names[0]].device
        noise = {}
        for path, shape, droppers in self._noise_plan():
            if not droppers:
                continue
            full = (batch_size, *shape)
            kinds = {type(m) for _, m, _ in droppers}
            stacked = getattr(droppers[0][1], "stacked_noise", None)
            if len(droppers) == self.size and len(kinds) == 1 and stacked is not None:
                noise[path] = stacked(full, [p for _, _, p in droppers], dtype, device,
                                      self.generators)
                continue
            per_member = [None] * self.size
            for k, module, p in droppers:
                per_member[k] = module.noise(full, p, dtype, device, self.generators[k])
            ones = torch.ones_like(per_member[droppers[0][0]])
            noise[path] = torch.stack([ones if t is None else t for t in per_member])
        return noise

    def _noise_plan(self) -> list[tuple[str, tuple, list]]:
        """Per slot call, in forward order: (path, per-example shape, [(k, module, p)] of the
        members that drop there). Built once: the stack trains no rate schedule."""
        if self._plan is None:
            self._plan = []
            for path, shape in self.order:
                droppers = []
                for k, model in enumerate(self.models):
                    module = model.get_submodule(path)
                    p = float(getattr(module, "p", 0.0))
                    if p > 0:
                        droppers.append((k, module, p))
                self._plan.append((path, shape, droppers))
        return self._plan

    # --- the step -------------------------------------------------------------------------
    def task_step(self, task, x: torch.Tensor, y: torch.Tensor, train: bool,
                  noise: dict | None = None, shared_batch: bool = False):
        """Every member's task.step: (K,) mean losses and (K, ...) sums. x, y: (K, B, ...) one
        batch per member, or (B, ...) one batch for all with shared_batch."""
        if self.template.training != train:  # train() walks every module: not per step
            self.template.train(train)
        noise = noise or {}
        if self.chain is not None:
            if shared_batch:
                x = x.expand(self.size, *x.shape)
            out = self._chain_forward(x, noise)
            if task.score_outputs is not None:  # the task's scoring takes member dims itself
                return task.score_outputs(out, y)

            def scored(member_out, ys):  # the task's step on outputs already computed
                return task.step(lambda _: member_out, (member_out, ys))

            return vmap(scored, in_dims=(0, None if shared_batch else 0))(out, y)

        def member_step(params, buffers, member_noise, xs, ys):
            for path, slot in self.slots.items():
                slot.noise = member_noise.get(path)
            try:
                def model(inputs):
                    return functional_call(self.template, (params, buffers), (inputs,))
                return task.step(model, (xs, ys))
            finally:
                for slot in self.slots.values():
                    slot.noise = None

        data_dim = None if shared_batch else 0
        return vmap(member_step, in_dims=(0, 0, 0, data_dim, data_dim),
                    randomness="error")(self.params, self.buffers, noise, x, y)

    # --- members in and out ---------------------------------------------------------------
    def transposed_indices(self) -> set[int]:
        """Which of parameters() are stacked (K, in, out), the transpose of the member's."""
        return {i for i, name in enumerate(self.names) if name in self.transposed}

    def member_tensors(self, k: int) -> list[torch.Tensor]:
        """Member k's parameters (views, in its own model's layout), in model.parameters()
        order."""
        return [self.params[name][k].detach().t() if name in self.transposed
                else self.params[name][k].detach() for name in self.names]
