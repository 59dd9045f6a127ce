"""Model families, each registered under the name used by `conf/model/<name>.yaml`."""

from dropbench import DropbenchError
from dropbench.models.mlp import build_mlp
from dropbench.models.rnn import build_rnn_lm

MODELS = {
    "mlp": build_mlp,
    "lstm": build_rnn_lm,
    "gru": build_rnn_lm,
}


def build_model(model_cfg, dropout_cfg, data):
    builder = MODELS.get(model_cfg.name)
    if builder is None:
        raise DropbenchError(f"unknown model {model_cfg.name!r}; choose one of {', '.join(MODELS)}")
    return builder(model_cfg, dropout_cfg, data)
