"""Dropout schemes. Importing this package registers every scheme module below."""

from dropbench.dropout import standard  # noqa: F401, I001  (registers standard and none)
from dropbench.dropout import gate, locked, weight_drop  # noqa: F401, I001  (recurrent schemes)
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

__all__ = ["SCHEMES", "get_scheme", "make_conv", "make_dropout", "make_embedding", "make_linear",
           "make_recurrent", "register"]
