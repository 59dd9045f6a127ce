"""Building a registered model family (dropbench.registry.MODELS; places.py: the built-ins):
its builder is imported when it is first built."""

from dropbench import registry
from dropbench.dropout import hooks
from dropbench.errors import DropbenchError


def __getattr__(name: str):
    if name == "MODELS":  # {name: (builder, places)} of every registered family
        return {e.name: (e.load(), e.declaration.places) for e in registry.MODELS.entries()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_model(model_cfg, dropout_cfg, data):
    entry = registry.MODELS.get(model_cfg.name, "model")
    reads = "text" if data.task == "lm" else "images"
    if entry.declaration.reads != reads:
        raise DropbenchError(f"model={model_cfg.name} cannot train on "
                             f"{'a text corpus' if reads == 'text' else 'images'}; use a model "
                             f"that reads {reads}: {', '.join(readers(reads))}")
    model = entry.load()(model_cfg, dropout_cfg, data)
    hooks.bind_model(model, data)
    hooks.attach_schedule(model, dropout_cfg)
    return model


def readers(reads: str) -> list[str]:
    return [e.name for e in registry.MODELS.entries() if e.declaration.reads == reads]
