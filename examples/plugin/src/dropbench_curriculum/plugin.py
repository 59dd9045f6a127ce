"""What this plugin declares, without torch: dropbench imports this module (the entry point in
pyproject.toml) for `dropbench list`, `train --help` and config validation. The torch code
(layers.py) is named by "module:attr" strings and imported only when a model is built.

Curriculum dropout: P. Morerio, J. Cavazza, R. Volpi, R. Vidal and V. Murino, "Curriculum
Dropout", ICCV 2017. The drop rate starts at 0 and rises towards its final value, so the
network meets easy (lightly perturbed) inputs first and harder ones later."""

from dataclasses import dataclass

from dropbench.config import ModelConfig
from dropbench.dropout.catalog import scheme
from dropbench.dropout.params import Place, UnitRates
from dropbench.ranges import above, at_least, choice
from dropbench.registry import register_config_dir, register_model

# conf/dropout/curriculum.yaml and conf/model/resmlp.yaml, so `dropout=curriculum` composes
register_config_dir("pkg://dropbench_curriculum.conf")


@scheme("curriculum", "curriculum dropout (Morerio et al. 2017): the rate grows from 0 towards "
        "p as p(t) = p (1 - exp(-gamma t)) over training steps t", ("dense",),
        builder="dropbench_curriculum.layers:FACTORIES")
@dataclass
class CurriculumParams(UnitRates):
    gamma: float = above(1e-3, 0.0, "how fast the rate approaches p, per training step "
                         "(p(t) reaches 95% of p at t = 3 / gamma)")


def resmlp_places(model_cfg) -> list[Place]:
    """The input, then one place per residual block, after its inner layer."""
    return [Place("input", "p_input", "dense"),
            Place("block", "p", "dense", count=model_cfg.blocks, layer=True)]


@dataclass
class ResMLPConfig(ModelConfig):
    width: int = at_least(256, 1, "units of every block")
    blocks: int = at_least(2, 1, "residual blocks x + f(x), f = dropout(act(linear(x)))")
    activation: str = choice("relu", ("relu", "tanh"), "the blocks' nonlinearity")


register_model("resmlp", ResMLPConfig, resmlp_places, "dropbench_curriculum.layers:build_resmlp",
               description="residual MLP: a projection, then blocks x + f(x)")
