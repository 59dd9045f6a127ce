"""Monte-Carlo perplexity for language models (Gal & Ghahramani 2016): the probabilities of the
correct word are averaged over T stochastic passes, and eval.compare writes scale vs. MC."""

import json
import math

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from dropbench.data.text import LanguageModelData
from dropbench.dropout.catalog import scheme_config
from dropbench.engine.lm import LanguageModelTask, windows
from dropbench.models.rnn import build_rnn_lm
from dropbench.report.collect import mc_points
from tests.test_rnn_cli import TINY, corpus  # noqa: F401  (corpus is a fixture)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
VOCAB = 23


def lm_data():
    g = torch.Generator().manual_seed(0)
    ids = lambda n: torch.randint(VOCAB, (n,), generator=g)  # noqa: E731
    return LanguageModelData(ids(300), ids(120), ids(131), [f"w{i}" for i in range(VOCAB)])


def model_and_task(scheme="variational", rate=0.4):
    dropout = scheme_config(scheme, p=rate, p_input=rate, p_output=rate, p_recurrent=rate,
                            p_embed=rate if scheme != "none" else 0.0)
    model = {"name": "lstm", "hidden": [12, 12], "embed_size": None, "tied": False,
             "init_scale": 0.3, "bptt": 6}
    data = lm_data()
    torch.manual_seed(0)
    lm = build_rnn_lm(OmegaConf.create(model), dropout, data)
    return lm, LanguageModelTask(data, batch_size=4, bptt=6, train_eval_tokens=100)


@torch.no_grad()
def stochastic_pass_log_probs(model, task, split):
    """By hand: dropout on (train mode), zero start state, state carried across windows."""
    model.train()
    state, out = None, []
    for x, y in windows(task.eval_streams[split], task.bptt):
        logits, state = model(x, state)
        out.append(-F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none"))
    model.eval()
    return torch.cat(out)


def test_mc_perplexity_with_one_sample_is_one_stochastic_pass():
    model, task = model_and_task()
    torch.manual_seed(1)
    got = task.mc_curve(model.eval(), "test", [1])[1]
    torch.manual_seed(1)
    loss = -stochastic_pass_log_probs(model, task, "test").mean().item()
    assert got["loss"] == pytest.approx(loss, rel=1e-6)
    assert got["ppl"] == pytest.approx(math.exp(loss), rel=1e-6)
    assert not model.training  # the model's mode is restored


def test_mc_averages_probabilities_not_log_probabilities():
    """T = 3 equals -mean log((p1 + p2 + p3) / 3) over the same three passes, which by
    Jensen is below the mean of the three per-pass losses."""
    model, task = model_and_task()
    torch.manual_seed(2)
    got = task.mc_curve(model, "val", [1, 3])
    torch.manual_seed(2)
    passes = torch.stack([stochastic_pass_log_probs(model, task, "val") for _ in range(3)])
    expected = -passes.exp().mean(0).log().mean().item()
    assert got[3]["loss"] == pytest.approx(expected, rel=1e-5)
    assert got[1]["loss"] == pytest.approx(-passes[0].mean().item(), rel=1e-6)
    assert got[3]["loss"] < -passes.mean().item()


def test_without_dropout_mc_equals_the_deterministic_score_at_every_t():
    model, task = model_and_task("none", 0.0)
    curve = task.mc_curve(model, "test", [1, 4])
    scale = task.scale_scores(model, "test")
    for scores in curve.values():
        assert scores == pytest.approx(scale, rel=1e-5)


def test_eval_mode_mc_scores_every_split_by_the_mc_average():
    model, task = model_and_task()
    task.mc_samples = 2
    torch.manual_seed(3)
    got = task.evaluate(model, "val")
    torch.manual_seed(3)
    assert got == task.mc_curve(model, "val", [2])[2]
    assert got != task.scale_scores(model, "val")


def test_compare_end_to_end_writes_scale_mc_and_the_curve(compose, corpus, tmp_path):  # noqa: F811
    from dropbench.engine import train

    cfg = compose(["dataset=textdir", f"dataset.path={corpus}", "model=lstm",
                   "dropout=variational", "dropout.p_recurrent=0.3", *TINY, "trainer.epochs=1",
                   "eval.compare=true", "eval.mc_samples=3", "eval.curve=[1,2]",
                   f"data_dir={tmp_path}", "device=cpu", "trainer.threads=1"])
    summary = train(cfg, tmp_path / "run")
    block = json.loads((tmp_path / "run/summary.json").read_text())["eval_compare"]
    assert [row["samples"] for row in block["curve"]] == [1, 2, 3]
    assert block["mc"] == {"samples": 3, **{k: v for k, v in block["curve"][-1].items()
                                            if k != "samples"}}
    assert block["scale"]["test_ppl"] == pytest.approx(summary["test_ppl"])
    assert block["mc"]["test_ppl"] == pytest.approx(math.exp(block["mc"]["test_loss"]))
    points = mc_points(summary, {"eval": {"mode": "scale"}}, "ppl")  # what the report draws
    assert [p["T"] for p in points] == [1, 2, 3, None]
    assert points[-1]["value"] == block["scale"]["test_ppl"]
