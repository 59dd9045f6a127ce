"""Model families, in two parts: where each puts dropout (places.py, no torch: what
`dropbench list` and config validation read) and how each is built (registry.py and one
module per family; torch). `MODELS` and `build_model` load torch on first use."""

from dropbench.models.places import PLACES, check_dropout

REGISTRY_NAMES = ("MODELS", "build_model")


def __getattr__(name: str):
    if name in REGISTRY_NAMES:  # `from dropbench.models import build_model` imports torch
        from dropbench.models import registry

        return getattr(registry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["PLACES", "check_dropout", *REGISTRY_NAMES]
