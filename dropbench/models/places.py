"""The built-in model families, registered in dropbench.registry.MODELS like any plugin's: each
with its config schema (config.py), where it puts dropout (dropout/params.py: Place), declared
without torch so `dropbench list` and config validation can read it, and its builder (mlp.py,
cnn.py, resnet.py, rnn.py), which builds its dropout at these places."""

from dropbench import registry
from dropbench.config import ConvNetConfig, MLPConfig, ResNetConfig, RNNConfig
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


BUILT_IN = (  # name, schema, places, builder, what it reads
    ("mlp", MLPConfig, mlp_places, "mlp:build_mlp", "images"),
    ("lenet", ConvNetConfig, convnet_places, "cnn:build_convnet", "images"),
    ("alexnet", ConvNetConfig, convnet_places, "cnn:build_convnet", "images"),
    ("resnet", ResNetConfig, resnet_places, "resnet:build_resnet", "images"),
    ("lstm", RNNConfig, rnn_places, "rnn:build_rnn_lm", "text"),
    ("gru", RNNConfig, rnn_places, "rnn:build_rnn_lm", "text"),
)


def register() -> None:
    registry.register_place_kind(BRANCH, "a residual block's branch f(x) of x + f(x), dropped "
                                 "whole per example while the skip path is kept")
    for name, schema, places, builder, reads in BUILT_IN:
        registry.register_model(name, schema, places, f"dropbench.models.{builder}", reads=reads)
