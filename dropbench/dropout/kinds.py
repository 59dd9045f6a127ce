"""The built-in kinds of place: what is dropped at a place a model offers. A plugin adds its
own kind with `register_place_kind` (e.g. a residual branch for DropPath)."""

from dropbench.registry import register_place_kind


def register() -> None:
    register_place_kind("dense", "units of fully connected layers (and an MLP's input)")
    register_place_kind("conv", "feature maps of convolutional layers (and a CNN's input image)")
    register_place_kind("sequence", "per-step features of a recurrent net (embedded words, "
                        "between layers, output)")
    register_place_kind("recurrent", "the recurrent connections inside an LSTM/GRU layer")
    register_place_kind("embedding", "whole words (rows) of an embedding matrix")
