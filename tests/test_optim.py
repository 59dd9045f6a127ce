"""Optimisers, schedules and the explicit regularisers compared against dropout."""

import csv
import inspect

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from dropbench import DropbenchError
from dropbench.config import OptimConfig
from dropbench.engine.optim import apply_max_norm, build_optimizer, build_scheduler, l1_penalty


def optim_cfg(**kw):
    """The optim schema's defaults (every key the optimisers read), then these values."""
    base = {"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0,
            "schedule": "none", "step_size": 2, "gamma": 0.5}
    return OmegaConf.merge(OmegaConf.structured(OptimConfig), {**base, **kw})


def test_max_norm_caps_each_units_incoming_weights():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 5))
    with torch.no_grad():
        net[0].weight.mul_(10)  # norms far above the cap
    small_before = net[2].weight.norm(dim=1).clone()
    expected = [torch.renorm(m.weight.detach(), p=2, dim=0, maxnorm=2.0) for m in net[::2]]
    projected = apply_max_norm(net, 2.0)
    norms = net[0].weight.norm(dim=1)  # one norm per hidden unit (row of the weight matrix)
    assert torch.all(norms <= 2.0 + 1e-5) and torch.allclose(norms, torch.full_like(norms, 2.0))
    # rows already inside the ball are untouched
    inside = small_before <= 2.0
    assert torch.allclose(net[2].weight.norm(dim=1)[inside], small_before[inside])
    assert projected.item() == 30 + (~inside).sum().item()  # every hidden unit, plus outliers
    for m, want in zip(net[::2], expected, strict=True):  # torch.renorm's rule exactly
        torch.testing.assert_close(m.weight.detach(), want, rtol=0, atol=1e-7)
    before = net[0].weight.detach().clone()
    apply_max_norm(net, 2.0)  # on the ball already (up to rounding): nothing moves
    torch.testing.assert_close(net[0].weight.detach(), before, rtol=1e-6, atol=0)
    assert apply_max_norm(net, None) is None


def test_metrics_count_the_weight_vectors_max_norm_projected(cli, tmp_path):
    """A binding constraint shows in metrics.csv; a loose one shows zeros; none, no column."""
    warned = {}
    for name, c in (("tight", "0.05"), ("loose", "1000"), ("off", "null")):
        r = cli("train", "trainer.epochs=2", "trainer.progress=false", f"optim.max_norm={c}",
                f"hydra.run.dir={name}")
        assert r.returncode == 0, r.stderr
        warned[name] = [line for line in (r.stdout + r.stderr).splitlines()
                        if "never acted" in line]
    # a radius no weight vector reached regularised nothing: one warning line says so
    assert not warned["tight"] and not warned["off"]
    assert len(warned["loose"]) == 1 and "optim.max_norm=1000 never acted" in warned["loose"][0]
    rows = {name: list(csv.DictReader(open(tmp_path / name / "metrics.csv")))
            for name in ("tight", "loose", "off")}
    assert all(int(row["max_norm_projected"]) > 0 for row in rows["tight"])
    assert [row["max_norm_projected"] for row in rows["loose"]] == ["0", "0"]
    assert "max_norm_projected" not in rows["off"][0]


def test_l1_penalty_sums_weights_not_biases():
    net = nn.Linear(3, 2)
    with torch.no_grad():
        net.weight.fill_(-0.5)
        net.bias.fill_(100.0)
    assert l1_penalty(net, 0.1).item() == pytest.approx(0.1 * 6 * 0.5)
    assert l1_penalty(net, 0.0) == 0.0


@pytest.mark.parametrize("name, cls", [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam),
                                       ("adamw", torch.optim.AdamW)])
def test_optimizers_and_weight_decay(name, cls):
    opt = build_optimizer(optim_cfg(name=name, weight_decay=0.01), nn.Linear(2, 2))
    assert isinstance(opt, cls) and opt.param_groups[0]["weight_decay"] == 0.01


def test_nesterov_and_unknown_optimizer():
    opt = build_optimizer(optim_cfg(nesterov=True), nn.Linear(2, 2))
    assert opt.param_groups[0]["nesterov"] is True
    with pytest.raises(DropbenchError, match="optim.name"):
        build_optimizer(optim_cfg(name="rmsprop"), nn.Linear(2, 2))


def test_schedules_change_the_learning_rate():
    def lrs(schedule, epochs=4):
        opt = build_optimizer(optim_cfg(), nn.Linear(2, 2))
        sched = build_scheduler(optim_cfg(schedule=schedule), opt, epochs)
        seen = []
        for _ in range(epochs):
            seen.append(opt.param_groups[0]["lr"])
            opt.step()
            if sched:
                sched.step()
        return seen

    assert lrs("none") == [0.1] * 4
    assert lrs("step") == pytest.approx([0.1, 0.1, 0.05, 0.05])
    cosine = lrs("cosine")
    assert cosine[0] == pytest.approx(0.1) and cosine == sorted(cosine, reverse=True)
    with pytest.raises(DropbenchError, match="optim.schedule"):
        lrs("linear")


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_eager_optimizers_step_exactly_like_torchs(name):
    """build_optimizer's classes skip torch.compile's wrappers (no torch._dynamo import) but
    take the same steps, fire step hooks and share torch's state_dict format."""
    torch.manual_seed(0)
    ours, theirs = nn.Linear(6, 4), nn.Linear(6, 4)
    theirs.load_state_dict(ours.state_dict())
    cfg = optim_cfg(name=name, weight_decay=0.01)
    opt = build_optimizer(cfg, ours)
    plain = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[name]
    assert isinstance(opt, plain) and type(opt) is not plain
    accepted = inspect.signature(plain).parameters
    reference = plain(theirs.parameters(), **{k: v for k, v in opt.defaults.items()
                                              if k in accepted})
    calls = []
    opt.register_step_post_hook(lambda *_: calls.append(1))
    x = torch.randn(8, 6)
    for _ in range(3):
        for model, o in ((ours, opt), (theirs, reference)):
            o.zero_grad()
            model(x).square().mean().backward()
            o.step()
    assert calls == [1, 1, 1]
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.equal(a, b)
    reference.load_state_dict(opt.state_dict())  # checkpoints load into torch's own class
    assert torch.is_grad_enabled()
