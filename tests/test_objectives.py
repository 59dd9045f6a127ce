"""Training objectives (dropbench/objectives.py, dropbench/engine/objectives.py): R-Drop's
loss against hand computations, its passes' masks, its refusals, and end-to-end runs."""

import csv
import json
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dropbench.engine.objectives import (
    RDrop,
    repeated_forward,
    rows_independent,
    symmetric_kl,
)
from dropbench.errors import DropbenchError


def hand_symmetric_kl(a: list[float], b: list[float]) -> float:
    """(KL(P||Q) + KL(Q||P)) / 2 in float64 plain Python, from the definition."""
    def softmax(z):
        m = max(z)
        e = [math.exp(v - m) for v in z]
        return [v / sum(e) for v in e]

    p, q = softmax(a), softmax(b)
    kl_pq = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))
    kl_qp = sum(qi * math.log(qi / pi) for pi, qi in zip(p, q, strict=True))
    return 0.5 * (kl_pq + kl_qp)


def test_symmetric_kl_matches_a_hand_computation_on_fixed_logits():
    a = [[1.0, 2.0, 3.0], [0.5, -1.0, 0.0], [2.0, 2.0, 2.0]]
    b = [[3.0, 1.0, 0.0], [0.5, -1.0, 0.0], [0.0, 1.0, -4.0]]
    got = symmetric_kl(torch.tensor(a), torch.tensor(b))
    want = torch.tensor([hand_symmetric_kl(x, y) for x, y in zip(a, b, strict=True)])
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    assert got[1] == 0  # identical logits: no divergence


def test_symmetric_kl_stays_exact_where_probabilities_underflow():
    """a = [0, -d], b = [-d, 0]: the symmetric KL halved is d * tanh(d / 2) exactly. At d=120
    the small probabilities (e^-120) underflow to 0 in float32, so KL from probabilities is
    not finite; from log-softmax it is."""
    d = 120.0
    a, b = torch.tensor([[0.0, -d]]), torch.tensor([[-d, 0.0]])
    p, q = a.softmax(-1), b.softmax(-1)
    naive = 0.5 * ((p * (p / q).log()).sum() + (q * (q / p).log()).sum())
    assert not torch.isfinite(naive)  # the case is one that needs log space
    torch.testing.assert_close(symmetric_kl(a, b), torch.tensor([d * math.tanh(d / 2)]),
                               rtol=1e-6, atol=0)


def test_alpha_zero_is_exactly_the_mean_cross_entropy_of_the_two_passes():
    gen = torch.Generator().manual_seed(0)
    first, second = torch.randn(2, 16, 10, generator=gen)
    target = torch.randint(0, 10, (16,), generator=gen)
    mean_ce = 0.5 * (F.cross_entropy(first, target) + F.cross_entropy(second, target))
    loss, ce, (kl,) = RDrop(SimpleNamespace(alpha=0.0)).loss([first, second], target)
    assert torch.equal(loss, mean_ce) and torch.equal(ce, mean_ce)
    # alpha weighs the paper's symmetric KL by alpha / 2 (half of eq. 3, per example)
    loss2, _, _ = RDrop(SimpleNamespace(alpha=2.0)).loss([first, second], target)
    torch.testing.assert_close(loss2, mean_ce + symmetric_kl(first, second).mean())
    assert kl > 0


@pytest.mark.parametrize("together", [True, False])
def test_the_passes_draw_independent_masks(together):
    """Two passes of dropout p=0.5 on ones: each copy keeps about half of the units, and the
    copies agree on a unit about half the time (independent masks; a shared mask would agree
    everywhere). 64 x 512 units: one standard deviation of the agreement is 0.003."""
    torch.manual_seed(0)
    first, second = repeated_forward(nn.Dropout(0.5), torch.ones(64, 512), 2, together)
    agree = ((first > 0) == (second > 0)).float().mean().item()
    assert abs(agree - 0.5) < 0.02
    assert abs((first > 0).float().mean().item() - 0.5) < 0.02


def test_one_stacked_forward_only_where_the_batch_rows_are_independent(compose):
    from dropbench.models import build_model

    def model(overrides, shape=(1, 8, 8)):
        cfg = compose(overrides)
        split = SimpleNamespace(x=torch.zeros(2, *shape), y=torch.zeros(2, dtype=torch.long))
        task = "lm" if cfg.model.name == "lstm" else "classify"
        data = SimpleNamespace(train=split, input_shape=shape, num_classes=10, vocab_size=20,
                               task=task)
        return build_model(cfg.model, cfg.dropout, data)

    assert rows_independent(model(["dropout.p=0.5"]))  # per-example masks, no BatchNorm
    assert not rows_independent(model(["dropout=dropconnect", "dropout.p=0.5"]))  # per batch
    assert not rows_independent(model(["model=lenet", "model.batchnorm=true", "dropout.p=0.5",
                                       "model.channels=[2,2]", "model.hidden=[8,8]"]))
    assert not rows_independent(model(["model=lstm", "dropout=locked", "model.hidden=[8,8]",
                                       "dropout.p_recurrent=0.5"]))  # weight drop: per batch


def test_language_model_passes_start_from_one_state_and_carry_the_first(compose):
    """Variational masks are drawn per forward call: the two passes of a window from the same
    state differ (KL > 0), and the state carried on is the first pass's."""
    from dropbench.engine.lm import LanguageModelTask
    from dropbench.engine.objectives import build_objective
    from dropbench.models import build_model

    cfg = compose(["model=lstm", "dropout=variational", "model.hidden=[8,8]", "objective=rdrop"])
    ids = torch.randint(0, 20, (400,), generator=torch.Generator().manual_seed(0))
    data = SimpleNamespace(train=ids, val=ids[:100], test=ids[:100], vocab_size=20, task="lm")
    task = LanguageModelTask(data, 4, 5, 50, objective=build_objective(cfg.objective))
    torch.manual_seed(1)
    model = build_model(cfg.model, cfg.dropout, data).train()
    batch = next(iter(task.train_batches()))
    task.state = model(batch[0])[1]  # a nonzero state to start the window from
    start = task.state
    torch.manual_seed(2)
    loss, sums = task.train_step(model, batch)
    assert sums[3] > 0  # KL sum: the passes drew different masks
    torch.manual_seed(2)  # the first pass again, with the same masks
    _, first_state = model(batch[0], start)
    torch.testing.assert_close(tensors(task.state), tensors(first_state))
    torch.manual_seed(3)  # a second pass from the same start, other masks: another state
    assert not torch.equal(tensors(model(batch[0], start)[1]), tensors(first_state))


def tensors(state) -> torch.Tensor:
    """A (nested) hidden state as one flat tensor."""
    if isinstance(state, torch.Tensor):
        return state.flatten()
    return torch.cat([tensors(s) for s in state])


@pytest.mark.parametrize("overrides, message", [
    (["objective=rdrop", "dropout=none"],
     "objective=rdrop compares two dropout passes, but dropout=none drops nothing"),
    (["objective=rdrop", "dropout.p=0", "dropout.p_input=0"],
     "dropout=standard drops nothing in model=mlp"),
    (["objective=rdrop", "objective.alpha=-1"], "objective.alpha=-1.0 is out of range"),
])
def test_meaningless_rdrop_is_refused_before_any_data_loads(compose, overrides, message):
    from dropbench.config import validate

    with pytest.raises(DropbenchError, match=message):
        validate(compose(overrides))
    validate(compose(["objective=rdrop", "dropout.p=0.5"]))  # a model that drops is fine


def test_rdrop_runs_alone_in_a_batched_sweep(compose):
    from dropbench.sweep.plan import why_alone

    assert why_alone(compose(["objective=rdrop"])) == (
        "objective.name=rdrop is not batched (batched: ce)")
    assert why_alone(compose([])) is None


def read_rows(run_dir):
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


def check_rdrop_run(run_dir, epochs: int = 2) -> None:
    """metrics.csv has a finite, positive train_kl every epoch; summary.json says completed."""
    rows = read_rows(run_dir)
    assert len(rows) == epochs
    kl = [float(row["train_kl"]) for row in rows]
    assert all(math.isfinite(v) and v > 0 for v in kl), kl
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"


def write_corpus(folder):
    folder.mkdir()
    words = "the cat sat on a mat and the dog ran to the big red house".split()
    for name, lines in [("train.txt", 60), ("valid.txt", 12), ("test.txt", 12)]:
        (folder / name).write_text("".join(
            " ".join(words[(i * 7 + j * 3) % len(words)] for j in range(9)) + "\n"
            for i in range(lines)))
    return folder


LM_RUN = ["model=lstm", "dataset=textdir", "dropout=variational", "objective=rdrop",
          "trainer.epochs=2", "model.hidden=[8,8]", "model.bptt=5", "trainer.batch_size=4",
          "trainer.train_eval_size=50", "trainer.progress=false", "device=cpu"]


def test_rdrop_trains_end_to_end_on_digits(cli, tmp_path):
    r = cli("train", "objective=rdrop", "objective.alpha=1", "trainer.epochs=2",
            "model.hidden=[32]", "dataset.train_subset=300", "trainer.progress=false",
            f"hydra.run.dir={tmp_path / 'run'}")
    assert r.returncode == 0, r.stderr
    check_rdrop_run(tmp_path / "run")


def test_rdrop_trains_a_language_model(compose, tmp_path):
    """The engine's own entry point (the CLI's process start is the slow test's)."""
    from dropbench.engine import train

    corpus = write_corpus(tmp_path / "corpus")
    cfg = compose([*LM_RUN, f"dataset.path={corpus}", f"data_dir={tmp_path}"])
    train(cfg, tmp_path / "lm")
    check_rdrop_run(tmp_path / "lm")


@pytest.mark.slow
def test_rdrop_trains_a_language_model_from_the_command_line(cli, tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    r = cli("train", *LM_RUN, f"dataset.path={corpus}", f"hydra.run.dir={tmp_path / 'lm'}")
    assert r.returncode == 0, r.stderr
    check_rdrop_run(tmp_path / "lm")


def test_rdrop_without_dropout_makes_no_run_dir(cli, tmp_path):
    run_dir = tmp_path / "run"
    r = cli("train", "objective=rdrop", "dropout=none", f"hydra.run.dir={run_dir}")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "dropbench: error: objective=rdrop compares two dropout passes, but dropout=none drops "
        "nothing in model=mlp (every rate is 0), so both passes are the same network; set a "
        "rate (e.g. dropout=standard dropout.p=0.5) or use objective=ce"]
    assert not run_dir.exists()


def test_a_key_of_another_objective_is_named_with_its_owner(compose):
    from dropbench.user_errors import user_error

    with pytest.raises(Exception) as caught:
        compose(["objective.alpha=1"])  # the default objective, ce, has no alpha
    assert user_error(caught.value) == (
        "objective=ce has no key 'alpha'; its keys: none; alpha is a key of objective=rdrop: "
        "set it in a run or sweep of that objective only")


class DoubledCrossEntropy:
    """A stand-in plugin objective: twice the cross-entropy of two passes, one column."""

    passes, columns = 2, ("train_gap",)

    def __init__(self, cfg):
        self.cfg = cfg

    def loss(self, logits, target):
        ce = [F.cross_entropy(out, target) for out in logits]
        return ce[0] + ce[1], (0.5 * (ce[0] + ce[1])).detach(), [(ce[0] - ce[1]).abs().detach()]


def test_an_objective_registered_through_the_public_api_is_built_and_checked():
    from dataclasses import dataclass

    from omegaconf import OmegaConf

    from dropbench import registry
    from dropbench.config import objective_dropout_rule
    from dropbench.data.tensors import Split
    from dropbench.engine.objectives import build_objective
    from dropbench.engine.tasks import ClassificationTask
    from dropbench.objectives import ObjectiveConfig

    @dataclass
    class DoubledConfig(ObjectiveConfig):
        pass

    registry.register_objective("doubled", DoubledConfig, f"{__name__}:DoubledCrossEntropy",
                                needs_dropout=True, package="tests")
    try:
        cfg = OmegaConf.create({"objective": {"name": "doubled"}, "dropout": {"name": "none"},
                                "model": {"name": "mlp"}})
        assert "drops nothing" in objective_dropout_rule(cfg, {"hidden": [0.0]})
        assert objective_dropout_rule(cfg, {"hidden": [0.5]}) is None
        objective = build_objective(cfg.objective)
        assert isinstance(objective, DoubledCrossEntropy)
        torch.manual_seed(0)
        split = Split(torch.randn(8, 4), torch.arange(8) % 3)
        task = ClassificationTask(SimpleNamespace(train=split), 8, 8, objective=objective)
        model = nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.5))
        _, sums = task.train_step(model, (split.x, split.y))
        assert set(task.finish(sums)) == {"loss", "acc", "train_gap"}
    finally:
        registry.OBJECTIVES.remove("doubled")


def test_a_run_dir_from_before_objectives_resumes_and_reads_as_cross_entropy():
    from dropbench.engine.resume import changed_keys
    from dropbench.rundir import with_implied_keys

    old = with_implied_keys({"seed": 0, "model": {"name": "mlp"}})  # saved without `objective`
    now = {"seed": 0, "model": {"name": "mlp"}, "trainer": {"eval_every": 1},
           "dropout": {"schedule_unit": "step"}}  # the other keys added since, at their values
    assert changed_keys(old, {**now, "objective": {"name": "ce"}}) == []
    assert changed_keys(old, {**now, "objective": {"name": "rdrop", "alpha": 1.0}}) == [
        'objective.alpha: (absent) -> 1.0', 'objective.name: "ce" -> "rdrop"']
