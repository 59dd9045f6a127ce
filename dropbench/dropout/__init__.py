"""Dropout schemes, in two parts: what each scheme declares (catalog.py: its params, the
place kinds it serves; no torch) and the factories that build its modules (registry.py and
one module per scheme; torch). `plan_rates` and `Place` need the declarations only; the
registry's names below load torch and every scheme module on first use."""

from dropbench.dropout.params import Place
from dropbench.dropout.plan import plan_rates

REGISTRY_NAMES = ("SCHEMES", "get_scheme", "make_conv", "make_dropout", "make_embedding",
                  "make_linear", "make_recurrent")


def __getattr__(name: str):
    if name in REGISTRY_NAMES:  # `from dropbench.dropout import make_dropout` imports torch
        from dropbench.dropout import registry

        return getattr(registry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Place", "plan_rates", *REGISTRY_NAMES]
