"""The scheme and the model through dropbench's registries: built at their places, refused in
one line where a place cannot be served."""

from types import SimpleNamespace

import pytest
import torch
from dropbench import DropbenchError, registry
from dropbench.dropout.catalog import scheme_config
from dropbench.dropout.describe import describe_dropout
from dropbench.dropout.plan import check_dropout
from dropbench.models.registry import build_model
from omegaconf import OmegaConf

from dropbench_curriculum.layers import CurriculumDropout

DIGITS_LIKE = SimpleNamespace(task="classify", input_shape=(1, 8, 8), num_classes=10)


def model_config(name: str, **values):
    schema = registry.MODELS.get(name).declaration.schema
    return OmegaConf.merge(OmegaConf.structured(schema), {"name": name, **values})


def test_resmlp_with_curriculum_dropout_drops_at_its_input_and_after_every_block():
    model = build_model(model_config("resmlp", width=16, blocks=3),
                        scheme_config("curriculum", p=[0.2, 0.3, 0.4], p_input=0.1),
                        DIGITS_LIKE)
    built = describe_dropout(model)
    assert [(e["place"], e["scheme"], e["rate"]) for e in built] == [
        ("input", "curriculum", 0.1), ("block", "curriculum", 0.2),
        ("block", "curriculum", 0.3), ("block", "curriculum", 0.4)]
    assert sum(isinstance(m, CurriculumDropout) for m in model.modules()) == 4
    assert model(torch.randn(5, 1, 8, 8)).shape == (5, 10)


def test_a_zero_rate_builds_no_dropout_module_there():
    model = build_model(model_config("resmlp", width=16, blocks=2),
                        scheme_config("curriculum", p=0.0, p_input=0.3), DIGITS_LIKE)
    assert [e["place"] for e in describe_dropout(model)] == ["input"]


def test_resmlp_takes_a_built_in_scheme_too():
    model = build_model(model_config("resmlp", width=16, blocks=2),
                        scheme_config("standard", p=0.5), DIGITS_LIKE)
    assert {e["scheme"] for e in describe_dropout(model)} == {"standard"}


def test_curriculum_dropout_is_refused_in_one_line_at_a_conv_place():
    with pytest.raises(DropbenchError) as refused:
        check_dropout(model_config("lenet", channels=[6, 16], hidden=[120, 84]),
                      scheme_config("curriculum", p=0.5))
    message = str(refused.value)
    assert "dropout=curriculum cannot drop the conv place" in message and "\n" not in message

