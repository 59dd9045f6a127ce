"""Stochastic depth (droppath): rates by depth, whole branches per example, the expectation,
eval mode, refusal on models without residual branches, and a CLI run of the ResNet.

Statistical checks are seeded; each tolerance is stated as a number of binomial (or sample-mean)
standard deviations, so a correct implementation fails them with negligible probability."""

import json
import math

import pytest
import torch
from omegaconf import OmegaConf

from dropbench import DropbenchError
from dropbench.config import model_schemas
from dropbench.data import ClassificationData, Split
from dropbench.dropout.catalog import scheme_config
from dropbench.dropout.describe import describe_dropout
from dropbench.dropout.droppath import DropPath, drop_path
from dropbench.models import build_model, check_dropout
from dropbench.ranges import layer_rates

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BLOCKS = [1, 1, 1, 1]


def resnet_config(blocks=BLOCKS):
    return OmegaConf.merge(OmegaConf.structured(model_schemas()["resnet"]),
                           {"name": "resnet", "channels": [4] * len(blocks), "blocks": blocks})


def images(n: int) -> ClassificationData:
    split = Split(torch.zeros(n, 1, 8, 8), torch.zeros(n, dtype=torch.long))
    return ClassificationData(split, split, split, (1, 8, 8), 10)


def test_a_single_rate_rises_linearly_with_depth_to_the_last_block():
    planned = check_dropout(resnet_config([2, 2, 2, 2]), scheme_config("droppath", p_branch=0.35))
    assert planned["branch"] == pytest.approx([0.35 * i / 7 for i in range(8)])
    assert planned["branch"][-1] == 0.35 and planned["stage"] == [0.0, 0.0]
    assert layer_rates(0.2, 1, spread="by_depth") == [0.2]
    assert layer_rates([0.1, 0.3], 2, spread="by_depth") == [0.1, 0.3]  # a list is taken as is


def test_the_fraction_of_examples_dropped_per_block_matches_its_rate():
    """Each block's branch, in the built ResNet, in training: the fraction of examples whose
    branch output is zero is the block's planned rate within 5 binomial standard deviations."""
    torch.manual_seed(0)
    n = 4000
    cfg = resnet_config()
    net = build_model(cfg, scheme_config("droppath", p_branch=0.3), images(n)).train()
    seen = {}

    def record(name):
        def hook(module, inputs, output):
            seen[name] = (module.p, inputs[0], output)
        return hook

    for name, module in net.named_modules():
        if isinstance(module, DropPath):
            module.register_forward_hook(record(name))
    net(torch.randn(n, 1, 8, 8))
    assert [p for p, _, _ in seen.values()] == pytest.approx([0.1, 0.2, 0.3])  # block 0: rate 0
    for name, (p, branch, out) in seen.items():
        dropped = out.flatten(1).eq(0).all(1)
        sigma = math.sqrt(p * (1 - p) / n)
        assert abs(dropped.float().mean().item() - p) < 5 * sigma, name
        # A dropped branch is zero for the whole example; a kept one is scaled by 1/(1-p).
        kept = ~dropped
        assert branch.flatten(1)[kept].ne(0).any(1).all()
        torch.testing.assert_close(out[kept], branch[kept] / (1 - p))


def test_every_example_is_dropped_whole_or_kept_whole():
    torch.manual_seed(1)
    x = torch.randn(512, 6, 5, 7) + 10  # no zeros of its own
    out = drop_path(x, 0.4)
    zero = out.eq(0).flatten(1)
    assert (zero.all(1) | ~zero.any(1)).all()  # all channels and positions, or none
    assert 0 < zero.all(1).sum() < 512


def test_the_expectation_is_preserved():
    """The mean of N draws of one example is the example, within 5 standard deviations of the
    mean (|x| sqrt(p / ((1-p) N)) per element)."""
    torch.manual_seed(2)
    p, n = 0.3, 20000
    x = torch.randn(1, 3, 4, 4)
    mean = drop_path(x.expand(n, -1, -1, -1), p).mean(0, keepdim=True)
    tolerance = 5 * x.abs() * math.sqrt(p / ((1 - p) * n))
    assert (mean - x).abs().le(tolerance + 1e-6).all()


def test_eval_mode_is_the_identity():
    x = torch.randn(4, 3, 2, 2)
    assert DropPath(0.5).eval()(x) is x
    outputs = []
    for scheme, rates in (("droppath", {"p_branch": 0.5}), ("none", {})):
        torch.manual_seed(3)  # DropPath has no parameters: both nets get the same weights
        net = build_model(resnet_config(), scheme_config(scheme, **rates), images(8)).eval()
        outputs.append(net(torch.randn(8, 1, 8, 8)))
    torch.testing.assert_close(outputs[0], outputs[1], rtol=0, atol=0)


def test_the_built_model_records_one_rate_per_block():
    net = build_model(resnet_config([2, 1]), scheme_config("droppath", p_branch=0.2), images(8))
    built = describe_dropout(net)
    assert [(e["place"], e["kind"], e["key"], e["rate"]) for e in built] == [
        ("branch", "branch", "p_branch", 0.1), ("branch", "branch", "p_branch", 0.2)]


@pytest.mark.parametrize("model", ["mlp", "lenet"])
def test_a_model_without_residual_branches_refuses_it_in_one_line(model):
    cfg = OmegaConf.merge(OmegaConf.structured(model_schemas()[model]), {"name": model})
    with pytest.raises(DropbenchError, match=rf"model={model} has no place for "
                                             r"dropout\.p_branch=0\.2") as e:
        check_dropout(cfg, scheme_config("droppath", p_branch=0.2))
    assert "\n" not in str(e.value)


def test_other_schemes_leave_the_branches_alone():
    planned = check_dropout(resnet_config(), scheme_config("standard", p=0.2))
    assert planned["branch"] == [0.0] * 4 and planned["stage"] == [0.2, 0.2]


def test_one_epoch_of_the_resnet_with_droppath_through_the_cli(cli, tmp_path):
    run = tmp_path / "run"
    r = cli("train", "dataset=digits", "model=resnet", "dropout=droppath", "dropout.p_branch=0.2",
            "model.channels=[8,16]", "model.blocks=[2,2]", "trainer.epochs=1",
            "trainer.progress=false", "trainer.threads=1", f"data_dir={tmp_path / 'data'}",
            f"hydra.run.dir={run}")
    assert r.returncode == 0, r.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert [e["rate"] for e in summary["dropout_built"]] == pytest.approx(
        [0.2 / 3, 0.4 / 3, 0.2], abs=1e-6)  # summary.json rounds to 6 digits
    log = (run / "train.log").read_text()
    assert "dropout=droppath deviates from its paper" in log
    listed = cli("list").stdout
    assert "droppath" in listed and "branch (dropout.p_branch)" in listed


def test_a_rate_key_of_another_scheme_is_refused_in_one_line_through_the_cli(cli):
    r = cli("train", "model=resnet", "dropout=droppath", "dropout.p=0.2", "hydra.run.dir=bad")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    line, = r.stderr.strip().splitlines()
    assert "dropout=droppath has no key 'p'; its keys: p_branch" in line, line
