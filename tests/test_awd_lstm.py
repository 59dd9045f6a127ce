"""The AWD-LSTM recipe (Merity et al. 2017): NT-ASGD, AR/TAR and variable-length BPTT."""

import logging
import math

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from dropbench.data.text import LanguageModelData
from dropbench.dropout import hooks
from dropbench.engine.lm import LanguageModelTask
from dropbench.engine.optim import NTASGD, evaluation_weights, scaled_lr
from dropbench.models.rnn import build_rnn_lm
from tests.test_rnn_cli import TINY, corpus  # noqa: F401  (corpus is a fixture)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
VOCAB = 20


def lm_data(n_train=400):
    g = torch.Generator().manual_seed(0)
    ids = lambda n: torch.randint(VOCAB, (n,), generator=g)  # noqa: E731
    return LanguageModelData(ids(n_train), ids(100), ids(100), [f"w{i}" for i in range(VOCAB)])


def awd_model(ar, tar, p_output=0.5):
    dropout = {"name": "locked", "p": 0.2, "p_input": 0.2, "p_output": p_output,
               "p_recurrent": 0.3, "p_embed": 0.1}
    model = {"name": "lstm", "hidden": [10, 10], "embed_size": None, "tied": False,
             "init_scale": 0.3, "bptt": 6, "ar": ar, "tar": tar}
    torch.manual_seed(0)
    return build_rnn_lm(OmegaConf.create(model), OmegaConf.create(dropout), lm_data())


def test_ar_and_tar_equal_the_hand_computed_penalty():
    """ar * mean(dropped last output^2) + tar * mean((h_t - h_{t-1})^2) of the raw output,
    from the tensors the last layer and the output dropout actually produced."""
    model = awd_model(ar=2.0, tar=1.0).train()
    seen = {}
    model.layers[-1].register_forward_hook(lambda m, i, out: seen.update(raw=out[0]))
    model.drop_output.register_forward_hook(lambda m, i, out: seen.update(dropped=out))
    model(torch.randint(VOCAB, (7, 3)))
    raw, dropped = seen["raw"], seen["dropped"]  # (7, 3, 10) each
    assert not torch.equal(raw, dropped)  # the output dropout did drop something
    ar = sum(v * v for v in dropped.flatten().tolist()) / dropped.numel()
    diffs = [(raw[t + 1, b, h] - raw[t, b, h]).item() for t in range(6) for b in range(3)
             for h in range(10)]
    tar = sum(d * d for d in diffs) / len(diffs)
    penalty = hooks.regularization(model)  # what the trainer adds to the loss
    assert penalty.item() == pytest.approx(2.0 * ar + 1.0 * tar, rel=1e-5)
    assert hooks.regularization(model) == 0.0  # taken once per forward
    with torch.no_grad():
        model(torch.randint(VOCAB, (7, 3)))
    assert hooks.regularization(model) == 0.0  # no penalty from no-grad (eval, MC) passes
    assert awd_model(ar=0.0, tar=0.0).train().penalty is None


def test_nt_asgd_switches_only_when_val_is_worse_than_the_best_before_the_last_n():
    opt = NTASGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1, nonmono=2)
    # before each check the rule compares with min(history[:-2]): 5, 4, 3, 3, then 3 < 3.1
    losses = [5.0, 4.0, 3.0, 3.5, 3.2, 2.9, 3.1, 2.0]
    switched = [opt.observe(v, check) for check, v in enumerate(losses, 1)]
    assert switched == [False] * 6 + [True, False]
    assert opt.averaging and opt.param_groups[0]["averaging_since"] == 7
    assert opt.param_groups[0]["val_history"] == losses
    steady = NTASGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1, nonmono=2)
    assert not any(steady.observe(10.0 - i, i) for i in range(30))  # always improving


def test_nt_asgd_averages_the_iterates_since_the_switch_and_resumes_them():
    param = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = NTASGD([param], lr=0.5, weight_decay=0.1)
    grads = [torch.tensor([1.0, 0.0]), torch.tensor([0.5, 2.0]), torch.tensor([-1.0, 1.0])]

    def step(g):
        param.grad = g.clone()
        expected = param.detach() - 0.5 * (g + 0.1 * param.detach())  # SGD with L2
        opt.step()
        torch.testing.assert_close(param.detach(), expected)
        return expected

    step(grads[0])  # before the switch: no average kept
    assert "average" not in opt.state[param]
    opt.param_groups[0]["averaging_since"] = 1  # as `observe` sets it
    iterates = [step(g) for g in grads[1:]]
    mean = torch.stack(iterates).mean(0)
    torch.testing.assert_close(opt.state[param]["average"], mean)
    current = param.detach().clone()
    with evaluation_weights(opt):
        torch.testing.assert_close(param.detach(), mean)
    torch.testing.assert_close(param.detach(), current)  # swapped back
    clone = NTASGD([torch.nn.Parameter(current.clone())], lr=0.5, weight_decay=0.1)
    clone.load_state_dict(opt.state_dict())  # what a checkpoint carries
    assert clone.averaging and clone.param_groups[0]["averaged_steps"] == 2
    torch.testing.assert_close(next(iter(clone.state.values()))["average"], mean)


def test_variable_bptt_windows_cover_the_stream_and_scale_the_lr():
    task = LanguageModelTask(lm_data(6000), batch_size=2, bptt=20, train_eval_tokens=100,
                             variable_bptt=True)
    g = torch.Generator().manual_seed(1)
    windows, scales = [], []
    for x, y in task.train_batches(g):
        windows.append((x, y))
        scales.append(task.lr_scale)
    assert torch.equal(torch.cat([x for x, _ in windows]), task.train[:-1])
    assert all(torch.equal(y[:-1], x[1:]) for x, y in windows)  # targets shifted by one
    lengths = [len(x) for x, _ in windows]
    assert scales == [n / 20 for n in lengths] and task.lr_scale == 1.0
    assert min(lengths[:-1]) >= 5 and len(set(lengths)) > 5
    # bptt 200: the two branches, N(200, 5) and N(100, 5), cannot overlap
    long = LanguageModelTask(lm_data(), batch_size=2, bptt=200, train_eval_tokens=100)
    draws = torch.tensor([long.draw_window_length(g) for _ in range(4000)], dtype=torch.float)
    assert abs((draws < 150).float().mean().item() - 0.05) < 0.012  # binomial std 0.0034
    short = draws[draws < 150]
    assert abs(short.mean().item() - 99.5) < 1.5  # int() truncates: half a step lower
    assert abs(draws[draws >= 150].mean().item() - 199.5) < 0.4  # std of the mean ~0.08


def test_bad_recipe_values_fail_before_any_data_loads(compose):
    from dropbench import DropbenchError
    from dropbench.config import validate

    with pytest.raises(DropbenchError, match=r"model.ar=-1.0 is out of range; use a number >= 0"):
        validate(compose(["model=lstm", "model.ar=-1"]))
    with pytest.raises(DropbenchError, match="optim.nonmono=0 is out of range; use an integer"):
        validate(compose(["optim=ntasgd", "optim.nonmono=0"]))


def test_scaled_lr_multiplies_inside_and_restores():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    with scaled_lr(opt, 0.25):
        assert opt.param_groups[0]["lr"] == 0.5
    assert opt.param_groups[0]["lr"] == 2.0


def awd_overrides(corpus, tmp_path):  # noqa: F811
    return ["+experiment=awd_lstm", "dataset=textdir", f"dataset.path={corpus}", *TINY,
            "model.hidden=[16,16]", "model.embed_size=16", "model.bptt=10", "trainer.epochs=4",
            "trainer.threads=1", "optim.nonmono=1", "optim.lr=20", f"data_dir={tmp_path}",
            "device=cpu"]


def test_awd_recipe_trains_and_resumes_exactly(compose, corpus, tmp_path, caplog):  # noqa: F811
    """NT-ASGD + AR/TAR + variable BPTT, trained 4 epochs straight and 2 + 2 with a resume:
    the same rows, the same switch to averaging."""
    from dropbench.engine import train

    common = awd_overrides(corpus, tmp_path)
    with caplog.at_level(logging.INFO, logger="dropbench"):
        straight = train(compose(common), tmp_path / "straight")
    assert "NT-ASGD" in caplog.text  # lr 20 on 16 units: validation stalls, averaging starts
    first_half = [o if o != "trainer.epochs=4" else "trainer.epochs=2" for o in common]
    train(compose(first_half), tmp_path / "resumed")
    resumed = train(compose([*common, "trainer.resume=true"]), tmp_path / "resumed")
    rows = [pd.read_csv(tmp_path / d / "metrics.csv") for d in ("straight", "resumed")]
    pd.testing.assert_frame_equal(rows[0].drop(columns="seconds"),
                                  rows[1].drop(columns="seconds"))
    assert straight["test_ppl"] == resumed["test_ppl"] and math.isfinite(straight["test_ppl"])
