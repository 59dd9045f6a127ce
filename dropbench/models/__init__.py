"""Model families, each registered under the name used by `conf/model/<name>.yaml`."""

from dropbench import DropbenchError
from dropbench.dropout import hooks
from dropbench.models.cnn import build_convnet
from dropbench.models.mlp import build_mlp
from dropbench.models.resnet import build_resnet
from dropbench.models.rnn import build_rnn_lm

MODELS = {
    "mlp": build_mlp,
    "lenet": build_convnet,
    "alexnet": build_convnet,
    "resnet": build_resnet,
    "lstm": build_rnn_lm,
    "gru": build_rnn_lm,
}


def build_model(model_cfg, dropout_cfg, data):
    builder = MODELS.get(model_cfg.name)
    if builder is None:
        raise DropbenchError(f"unknown model {model_cfg.name!r}; choose one of {', '.join(MODELS)}")
    if data.task == "lm" and builder is not build_rnn_lm:
        raise DropbenchError(f"model={model_cfg.name} cannot train on a text corpus; use "
                             f"model=lstm or model=gru for language modelling")
    model = builder(model_cfg, dropout_cfg, data)
    hooks.bind_model(model, data)
    return model
