"""Dropout schemes. Importing this package registers every scheme module below."""

from dropbench.dropout import (  # noqa: F401  (each module registers its schemes)
    alpha,
    classic,
    concrete,
    dropblock,
    dropconnect,
    gate,
    gaussian,
    locked,
    spatial,
    standard,
    variational,
    weight_drop,
)
from dropbench.dropout.params import Place
from dropbench.dropout.plan import plan_rates
from dropbench.dropout.registry import (
    SCHEMES,
    get_scheme,
    make_conv,
    make_dropout,
    make_embedding,
    make_linear,
    make_recurrent,
    register,
)

__all__ = ["SCHEMES", "Place", "get_scheme", "make_conv", "make_dropout", "make_embedding",
           "make_linear", "make_recurrent", "plan_rates", "register"]
