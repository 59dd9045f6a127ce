"""Where each model family puts dropout (dropout/params.py: Place), declared without torch so
`dropbench list` and config validation can read it; the builders (mlp.py, cnn.py, resnet.py,
rnn.py) build their dropout at these places, and registry.py pairs each family with its
builder."""

from dropbench import DropbenchError
from dropbench.dropout.params import Place
from dropbench.dropout.plan import plan_rates


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


def resnet_places(model_cfg) -> list[Place]:
    return [RESNET_INPUT, RESNET_STAGES, RESNET_CLASSIFIER]


def rnn_places(model_cfg) -> list[Place]:
    n = len(model_cfg.hidden)
    return [Place("embedding", "p_embed", "embedding"),
            Place("input", "p_input", "sequence"),
            Place("hidden", "p", "sequence", count=max(n - 1, 0), sized_by="hidden"),  # between
            Place("recurrent", "p_recurrent", "recurrent", count=n, sized_by="hidden"),
            Place("output", "p_output", "sequence")]


PLACES = {  # model name (conf/model/<name>.yaml) -> its places
    "mlp": mlp_places,
    "lenet": convnet_places,
    "alexnet": convnet_places,
    "resnet": resnet_places,
    "lstm": rnn_places,
    "gru": rnn_places,
}


def known_model(name: str) -> str:
    if name not in PLACES:
        raise DropbenchError(f"unknown model {name!r}; choose one of {', '.join(PLACES)}")
    return name


def model_places(model_cfg) -> list[Place]:
    return PLACES[known_model(model_cfg.name)](model_cfg)


def check_dropout(model_cfg, dropout_cfg) -> dict[str, list[float]]:
    """Every dropout rate lands on a place the model has and the scheme serves (config
    validation calls this before any data loads). Returns {place role: rates}."""
    return plan_rates(model_cfg.name, model_places(model_cfg), dropout_cfg)
