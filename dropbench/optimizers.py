"""The built-in optimisers, registered in dropbench.registry.OPTIMIZERS like any plugin's; each
builder (engine/optim.py) takes the optim config and the model's parameters."""

from dropbench.registry import register_optimizer


def register() -> None:
    register_optimizer("sgd", "dropbench.engine.optim:sgd",
                       description="SGD with optional (Nesterov) momentum")
    register_optimizer("adam", "dropbench.engine.optim:adam", description="Adam")
    register_optimizer("adamw", "dropbench.engine.optim:adamw",
                       description="AdamW (decoupled weight decay)")
    register_optimizer("ntasgd", "dropbench.engine.optim:ntasgd",
                       description="non-monotonically triggered averaged SGD (Merity et al.)")
