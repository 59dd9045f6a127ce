"""The built-in model families, registered in dropbench.registry.MODELS like any plugin's: each
with its config schema (config.py), where it puts dropout (dropout/params.py: Place), declared
without torch so `dropbench list` and config validation can read it, and its builder (mlp.py,
cnn.py, resnet.py, rnn.py, vit.py, transformer_lm.py), which builds its dropout at these
places."""

from dropbench import registry
from dropbench.config import (
    ConvNetConfig,
    MLPConfig,
    ResNetConfig,
    RNNConfig,
    TransformerLMConfig,
    ViTConfig,
)
from dropbench.dropout.params import Place
from dropbench.dropout.plan import check_dropout, model_places  # noqa: F401  (imported from here)


def mlp_places(model_cfg) -> list[Place]:
    return [Place("input", "p_input", "dense"),
            Place("hidden", "p", "dense", count=len(model_cfg.hidden), layer=True,
                  sized_by="hidden")]


def convnet_places(model_cfg) -> list[Place]:
    """One place per conv block, then one per hidden fully connected layer (cnn.py)."""
    return [Place("input", "p_input", "conv"),
            Place("conv", "p", "conv", count=len(model_cfg.channels), layer=True,
                  sized_by="channels"),
            Place("fc", "p", "dense", count=len(model_cfg.hidden), layer=True,
                  sized_by="hidden")]


RESNET_INPUT = Place("input", "p_input", "conv")
RESNET_STAGES = Place("stage", "p", "conv", count=2, layer=True)  # the last two stages
RESNET_CLASSIFIER = Place("classifier", "p", "dense", layer=True)
BRANCH = "branch"  # the kind of place the ResNet adds: a residual branch, dropped whole


def resnet_branches(blocks) -> Place:
    """The residual branch of every block, in depth order (blocks: the count per stage). A
    separate key from `p`: the stages' and the classifier's rate is another scheme's business."""
    return Place("branch", "p_branch", BRANCH, count=sum(blocks))


def resnet_places(model_cfg) -> list[Place]:
    return resnet_places_of(model_cfg.blocks)


def resnet_places_of(blocks) -> list[Place]:
    return [RESNET_INPUT, RESNET_STAGES, RESNET_CLASSIFIER, resnet_branches(blocks)]


def rnn_places(model_cfg) -> list[Place]:
    n = len(model_cfg.hidden)
    return [Place("embedding", "p_embed", "embedding"),
            Place("input", "p_input", "sequence"),
            Place("hidden", "p", "sequence", count=max(n - 1, 0), sized_by="hidden"),  # between
            Place("recurrent", "p_recurrent", "recurrent", count=n, sized_by="hidden"),
            Place("output", "p_output", "sequence")]


TOKEN = "token"  # the kinds of place the Transformers add (transformer.py)
ATTENTION = "attention"


def transformer_places(model_cfg) -> list[Place]:
    """Where Vaswani et al. 2017 (section 5.4) drop at P_drop, plus DropPath: the sum of the
    token (or patch) and position embeddings; per block, in depth order, the attention
    probabilities, the output of each of the two sub-layers (attention, MLP) before its
    residual sum, and those two residual branches dropped whole per example (one rate per
    block, rising with depth as the ResNet's)."""
    depth = model_cfg.depth
    return [Place("input", "p_input", TOKEN),
            Place("attention", "p_attn", ATTENTION, count=depth),
            Place("residual", "p", TOKEN, count=depth),
            Place("branch", "p_branch", BRANCH, count=depth)]


BUILT_IN = (  # name, schema, places, builder, what it reads
    ("mlp", MLPConfig, mlp_places, "mlp:build_mlp", "images"),
    ("lenet", ConvNetConfig, convnet_places, "cnn:build_convnet", "images"),
    ("alexnet", ConvNetConfig, convnet_places, "cnn:build_convnet", "images"),
    ("resnet", ResNetConfig, resnet_places, "resnet:build_resnet", "images"),
    ("lstm", RNNConfig, rnn_places, "rnn:build_rnn_lm", "text"),
    ("gru", RNNConfig, rnn_places, "rnn:build_rnn_lm", "text"),
    ("vit", ViTConfig, transformer_places, "vit:build_vit", "images"),
    ("transformer_lm", TransformerLMConfig, transformer_places,
     "transformer_lm:build_transformer_lm", "text"),
)


def register() -> None:
    registry.register_place_kind(BRANCH, "a residual block's branch f(x) of x + f(x), dropped "
                                 "whole per example while the skip path is kept")
    registry.register_place_kind(TOKEN, "per-token features of a Transformer (the embeddings "
                                 "sum, each sub-layer's output before its residual sum)")
    registry.register_place_kind(ATTENTION, "a Transformer's attention probabilities (each "
                                 "query's softmax weights over the keys)")
    for name, schema, places, builder, reads in BUILT_IN:
        registry.register_model(name, schema, places, f"dropbench.models.{builder}", reads=reads)
