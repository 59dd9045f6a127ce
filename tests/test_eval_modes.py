"""Monte-Carlo evaluation (engine/mc.py) and the eval config, end to end through the CLI."""

import json
import math

import pandas as pd
import pytest
import torch
from torch import nn

from dropbench import DropbenchError
from dropbench.config import validate
from dropbench.data import Split
from dropbench.dropout import Place, make_dropout, make_linear
from dropbench.dropout.catalog import scheme_config
from dropbench.engine import mc

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def scheme_cfg(name, **kw):
    return scheme_config(name, **kw)


def linear_model(scheme: str, p=0.4) -> nn.Module:
    """A linear model with dropout on its input (or on its weights, for DropConnect)."""
    torch.manual_seed(0)
    cfg = scheme_cfg(scheme)
    place = Place("hidden", "p", "dense", layer=True)  # units before the layer, or its weights
    return nn.Sequential(make_dropout(cfg, p, place), make_linear(cfg, 20, 3, p, place))


def test_mc_mode_switches_only_dropout_on_and_restores():
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Dropout(0.5)).eval()
    with mc.mc_mode(model):
        assert model[2].training and not model[1].training
    assert not any(m.training for m in model.modules())
    model.train()
    with mc.mc_mode(model):
        assert not model[1].training  # running statistics are used, never updated
    assert all(m.training for m in model.modules())


def test_mc_with_one_sample_is_one_stochastic_pass():
    model = nn.Sequential(nn.Linear(20, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 3))
    model[1].running_mean.fill_(0.3)  # eval-mode BatchNorm must be visibly different
    x = torch.randn(16, 20)
    torch.manual_seed(1)
    got = mc.mc_mean(model, x, samples=1)
    torch.manual_seed(1)
    model.eval()
    model[2].train()  # by hand: dropout on, BatchNorm in eval mode
    with torch.no_grad():
        expected = model(x)
    assert torch.equal(got, expected)


@pytest.mark.parametrize("scheme", ["standard", "classic", "gaussian", "dropconnect"])
def test_mc_average_converges_to_the_scaled_output(scheme):
    """For a linear model E[stochastic output] = the eval (weight-scaled) output, so the MC
    mean's error shrinks like 1/sqrt(T)."""
    model = linear_model(scheme)
    x = torch.randn(8, 20)
    with torch.no_grad():
        scaled = model.eval()(x)
    torch.manual_seed(2)
    errors = {t: (mc.mc_mean(model, x, t) - scaled).abs().max().item() for t in (4, 4000)}
    one_pass_sd = math.sqrt(torch.stack([mc.mc_mean(model, x, 1) for _ in range(200)])
                            .var(0).max().item())
    assert errors[4000] < 6 * one_pass_sd / math.sqrt(4000)
    assert errors[4000] < errors[4] / 8  # sqrt(1000) ~ 32 times smaller on average


def test_curve_scores_and_no_dropout_model_is_the_same_at_every_t():
    torch.manual_seed(3)
    split = Split(torch.randn(300, 20), torch.randint(0, 3, (300,)))
    plain = nn.Sequential(nn.Linear(20, 3))
    curve = mc.classification_curve(plain, split, [1, 3, 10])
    scale = mc.classification_scale(plain, split)
    for scores in curve.values():
        assert scores == pytest.approx(scale)
    with torch.no_grad():
        logits = plain(split.x)
    loss = nn.functional.cross_entropy(logits, split.y).item()
    assert scale["loss"] == pytest.approx(loss, rel=1e-5)
    assert scale["acc"] == pytest.approx((logits.argmax(1) == split.y).float().mean().item())
    zero = nn.Linear(20, 3)
    nn.init.zeros_(zero.weight)
    nn.init.zeros_(zero.bias)
    uniform = mc.classification_scale(zero, split)  # logits all 0: uniform predictions
    assert uniform["entropy"] == pytest.approx(math.log(3), rel=1e-5)


def test_mc_raises_predictive_entropy_of_a_dropout_model():
    torch.manual_seed(4)
    split = Split(torch.randn(500, 20), torch.randint(0, 3, (500,)))
    model = nn.Sequential(nn.Dropout(0.5), nn.Linear(20, 3))
    one, many = (mc.classification_curve(model, split, [1, 50])[t]["entropy"] for t in (1, 50))
    assert many > one  # averaging distributions spreads them out (entropy is concave)


def test_eval_config_validation(compose):
    with pytest.raises(DropbenchError, match="eval.mode='bogus'"):
        validate(compose(["eval.mode=bogus"]))
    with pytest.raises(DropbenchError, match=r"eval.curve=\[0,5\] is out of range; use a list"):
        validate(compose(["eval.curve=[0,5]"]))
    with pytest.raises(DropbenchError, match="eval.mode=mc"):
        validate(compose(["dropout=dropconnect", "dropout.inference=gaussian"]))
    validate(compose(["dropout=dropconnect", "dropout.inference=gaussian", "eval.mode=mc"]))


def test_list_shows_each_scheme_with_places_and_parameters(capsys):
    from dropbench.cli import list_command

    list_command(None)
    out = capsys.readouterr().out
    assert "dropconnect" in out and "[dense, conv]" in out
    assert "p=0.5 where=all per_example=false mask_bias=true inference=mean" in out
    assert "dropout places: input (dropout.p_input), hidden (dropout.p)" in out  # model=mlp
    assert "temperature=0.1 length_scale=0.01 dropout_reg=1.0" in out


@pytest.mark.parametrize("scheme", ["concrete", "dropconnect"])
def test_compare_and_learned_rates_end_to_end(compose, tmp_path, scheme):
    """concrete: learned rates in metrics.csv; DropConnect with Gaussian inference under MC.
    Both with eval.compare, trained in-process on the embedded digits data."""
    from dropbench.engine import train

    gaussian = ["dropout.inference=gaussian"] if scheme == "dropconnect" else []
    cfg = compose([f"dropout={scheme}", *gaussian, "eval.mode=mc",
                   "eval.mc_samples=4", "eval.compare=true", "eval.curve=[1,2]",
                   "model.hidden=[32]", "trainer.epochs=2", "trainer.progress=false",
                   f"data_dir={tmp_path}", "device=cpu"])
    summary = train(cfg, tmp_path / "run")
    assert summary["status"] == "completed"
    compare = json.loads((tmp_path / "run/summary.json").read_text())["eval_compare"]
    assert [row["samples"] for row in compare["curve"]] == [1, 2, 4]
    assert 0 <= compare["mc"]["test_error"] <= 1 and compare["scale"]["test_entropy"] >= 0
    last = {k: v for k, v in compare["curve"][-1].items() if k != "samples"}
    assert compare["mc"] == {"samples": 4, **last}
    if scheme == "concrete":
        rates = pd.read_csv(tmp_path / "run/metrics.csv")[["p.net.1", "p.net.4"]]
        assert len(rates) == 2 and ((rates > 0) & (rates < 1)).all().all()
        assert (rates.iloc[1] != rates.iloc[0]).all()  # learned, so it moved


def test_bad_eval_mode_is_one_line_on_the_cli(cli):
    result = cli("train", "eval.mode=mcc", "trainer.epochs=1")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "dropbench: error: eval.mode='mcc' is unknown; use scale or mc"]
