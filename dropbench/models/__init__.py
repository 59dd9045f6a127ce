"""Model families, each registered under the name used by `conf/model/<name>.yaml` with its
builder and the places where it puts dropout (dropout/params.py: Place)."""

from dropbench import DropbenchError
from dropbench.dropout import hooks, plan_rates
from dropbench.models.cnn import build_convnet, convnet_places
from dropbench.models.mlp import build_mlp, mlp_places
from dropbench.models.resnet import build_resnet, resnet_places
from dropbench.models.rnn import build_rnn_lm, rnn_places

MODELS = {  # name -> (builder, places)
    "mlp": (build_mlp, mlp_places),
    "lenet": (build_convnet, convnet_places),
    "alexnet": (build_convnet, convnet_places),
    "resnet": (build_resnet, resnet_places),
    "lstm": (build_rnn_lm, rnn_places),
    "gru": (build_rnn_lm, rnn_places),
}


def model_entry(model_cfg):
    if model_cfg.name not in MODELS:
        raise DropbenchError(f"unknown model {model_cfg.name!r}; choose one of "
                             f"{', '.join(MODELS)}")
    return MODELS[model_cfg.name]


def check_dropout(model_cfg, dropout_cfg) -> dict[str, list[float]]:
    """Every dropout rate lands on a place the model has and the scheme serves (config
    validation calls this before any data loads). Returns {place role: rates}."""
    _, places = model_entry(model_cfg)
    return plan_rates(model_cfg.name, places(model_cfg), dropout_cfg)


def build_model(model_cfg, dropout_cfg, data):
    builder, _ = model_entry(model_cfg)
    if data.task == "lm" and builder is not build_rnn_lm:
        raise DropbenchError(f"model={model_cfg.name} cannot train on a text corpus; use "
                             f"model=lstm or model=gru for language modelling")
    model = builder(model_cfg, dropout_cfg, data)
    hooks.bind_model(model, data)
    return model
