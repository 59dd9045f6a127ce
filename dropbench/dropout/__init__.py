"""Dropout schemes. Importing this package registers every scheme module below."""

from dropbench.dropout import (
    dropblock,  # noqa: F401  (registers dropblock)
    spatial,  # noqa: F401  (registers spatial)
    standard,  # noqa: F401  (registers standard and none)
)
from dropbench.dropout.registry import (
    SCHEMES,
    get_scheme,
    make_conv,
    make_dropout,
    make_linear,
    register,
)

__all__ = ["SCHEMES", "get_scheme", "make_conv", "make_dropout", "make_linear", "register"]
