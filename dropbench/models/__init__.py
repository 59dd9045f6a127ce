"""Model families, in two parts: what each declares (dropbench.registry.MODELS; places.py
registers the built-ins: schema and places, no torch: what `dropbench list` and config
validation read) and how each is built (registry.py and one module per family; torch).
`MODELS` and `build_model` load torch on first use."""

from dropbench.dropout.plan import check_dropout

REGISTRY_NAMES = ("MODELS", "build_model")


def __getattr__(name: str):
    if name in REGISTRY_NAMES:  # `from dropbench.models import build_model` imports torch
        from dropbench.models import registry

        return getattr(registry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["check_dropout", *REGISTRY_NAMES]
