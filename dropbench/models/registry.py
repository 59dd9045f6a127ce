"""Each model family's builder, paired with its declared places (places.py) under the name
used by `conf/model/<name>.yaml`."""

from dropbench import DropbenchError
from dropbench.dropout import hooks
from dropbench.models.cnn import build_convnet
from dropbench.models.mlp import build_mlp
from dropbench.models.places import PLACES, known_model
from dropbench.models.resnet import build_resnet
from dropbench.models.rnn import build_rnn_lm

BUILDERS = {
    "mlp": build_mlp,
    "lenet": build_convnet,
    "alexnet": build_convnet,
    "resnet": build_resnet,
    "lstm": build_rnn_lm,
    "gru": build_rnn_lm,
}
if set(BUILDERS) != set(PLACES):  # a family built without declared places, or the reverse
    raise TypeError(f"models with places but no builder, or a builder but no places: "
                    f"{sorted(set(BUILDERS) ^ set(PLACES))}")
MODELS = {name: (BUILDERS[name], places) for name, places in PLACES.items()}  # (builder, places)


def build_model(model_cfg, dropout_cfg, data):
    builder = BUILDERS[known_model(model_cfg.name)]
    if data.task == "lm" and builder is not build_rnn_lm:
        raise DropbenchError(f"model={model_cfg.name} cannot train on a text corpus; use "
                             f"model=lstm or model=gru for language modelling")
    model = builder(model_cfg, dropout_cfg, data)
    hooks.bind_model(model, data)
    return model
