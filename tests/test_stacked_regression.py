"""UCI regression members in one stack (dropbench/sweep/member_data.py, StackedModel.penalty,
plan.py's regression member keys): members of different splits, tau and dropout rates, each
on its own standardised data with its own weight prior, train and score as their lone runs;
the whole protocol through the batched launcher gives the basic launcher's results."""

import csv
import json
import math

import pytest
import torch

from dropbench.data import load_data
from dropbench.models.prior import l2_strength
from dropbench.sweep.batch import evaluate, stacked_epoch
from dropbench.sweep.member_data import MemberData
from dropbench.sweep.plan import plan
from dropbench.sweep.stackable import l2_coefficients, why_not_stacked
from tests.data_files import write_uci
from tests.test_stacked_models import assert_same_weights, lone_run, member, stack_of, take
from tests.test_uci_protocol import QUICK

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# (split, tau, p) of three members: every one differs in its data bundle and its prior
MEMBERS = [(0, 0.5, 0.05), (1, 2.0, 0.2), (2, 0.5, 0.1)]
LENGTHSCALE = 3.0


def uci_cfgs(compose, root, dropout: bool) -> list:
    return [compose(["+experiment=gal_uci", "dataset.name=yacht", f"data_dir={root}",
                     f"dataset.split={k}", f"dataset.tau={tau}", "dataset.validation=true",
                     f"dropout.p={p if dropout else 0}", f"dropout.p_input={p if dropout else 0}",
                     "model.hidden=[8]", "trainer.batch_size=16", f"seed={i}",
                     # a prior strong enough that a member given another's would part
                     f"dataset.lengthscale={LENGTHSCALE}"])
            for i, (k, tau, p) in enumerate(MEMBERS)]


@pytest.mark.parametrize("dropout", [False, True])
def test_stacked_regression_members_train_and_score_as_their_lone_runs(compose, tmp_path,
                                                                       dropout):
    """Two epochs (3 steps each) of three members on their own splits: weights, train
    scores (each on its own target scale) and val scores equal the lone runs' within float
    rounding; with dropout on only bit-equal masks keep them so."""
    root = tmp_path / "data"
    write_uci(root, n_rows=60, test_size=12, n_splits=3)
    cfgs = uci_cfgs(compose, root, dropout)
    bundles = [load_data(cfg.dataset, root, torch.device("cpu")) for cfg in cfgs]
    assert len({b.y_std for b in bundles}) == 3  # each split standardises with its own rows
    members = [member(cfg, b, tmp_path / "stacked") for cfg, b in zip(cfgs, bundles, strict=True)]
    runs = [r for r, _ in members]
    assert why_not_stacked([r.model for r in runs]) is None
    for run, (_, tau, p), bundle in zip(runs, MEMBERS, bundles, strict=True):
        # each member's own prior: its first layer's reg from its input rate, tau and N
        reg = l2_strength(LENGTHSCALE, p if dropout else 0.0, len(bundle.train), tau)
        assert l2_coefficients(run.model)["net.2.weight"] == pytest.approx(reg)
    stack, optimizer = stack_of(runs, [g for _, g in members], bundles[0])
    data = MemberData([r.task for r in runs])
    assert not data.shared
    for _ in range(2):
        sums, _ = stacked_epoch(stack, optimizer, runs[0].task, bundles[0].train, 16,
                                [r.shuffle for r in runs], data=data)
    val = evaluate(stack, runs[0].task, "val", data, [r.task for r in runs])
    take(stack, optimizer, runs)
    for k, (cfg, bundle) in enumerate(zip(cfgs, bundles, strict=True)):
        alone = lone_run(cfg, bundle, tmp_path / "alone")
        alone.train_epoch()
        scores = alone.train_epoch()
        assert_same_weights(runs[k].model, alone.model)
        ours = runs[k].task.finish(sums[k])
        for key in ("loss", "rmse", "ll"):
            assert ours[key] == pytest.approx(scores[key], rel=1e-5), key
        theirs = alone.evaluate("val")
        for key in ("loss", "rmse", "ll"):
            assert val[k][key] == pytest.approx(theirs[key], rel=1e-5), key


def test_regression_splits_and_taus_are_member_keys(compose, tmp_path):
    """All (split, tau, p) jobs of the selection stage plan as one batch; a refit job (another
    training size) and a classification job with another seed-only difference do not mix."""
    base = ["+experiment=gal_uci", "dataset.name=yacht", "dataset.validation=true"]
    cfgs = [compose([*base, f"dataset.split={k}", f"dataset.tau={tau}", f"dropout.p={p}"])
            for k, tau, p in MEMBERS]
    cfgs.append(compose([*base[:2], "dataset.validation=false", "dataset.split=0"]))
    units = plan(cfgs, max_batch=256)
    assert [u.jobs for u in units] == [[0, 1, 2], [3]]
    # a classification dataset keeps its split-free key set: seeds batch, nothing else new
    digits = [compose(["dataset=digits", f"seed={s}"]) for s in (0, 1)]
    assert [u.jobs for u in plan(digits, max_batch=16)] == [[0, 1]]


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def assert_rows_close(ours: list[dict], theirs: list[dict], what: str) -> None:
    assert len(ours) == len(theirs), what
    for a, b in zip(ours, theirs, strict=True):
        assert a.keys() == b.keys(), what
        for key in a:
            if key in ("seconds", "run", "status"):
                continue
            try:
                x, y = float(a[key]), float(b[key])
            except ValueError:
                assert a[key] == b[key], (what, key)
                continue
            assert math.isclose(x, y, rel_tol=2e-4, abs_tol=1e-5), (what, key, x, y)


@pytest.mark.slow
def test_the_protocol_batched_gives_the_basic_launchers_results(cli, tmp_path):
    """The protocol on a tiny dataset (3 splits, 2 x 2 grid, dropout on): through the batched
    launcher (the default) every selection job of every split shares one stack, and
    protocol.csv, each job's metrics.csv rows and its summary.json scores (MC passes
    included) are the basic launcher's within float rounding."""
    data = write_uci(tmp_path / "data", n_rows=60, test_size=12, n_splits=3)
    (data / "dropout_rates.txt").write_text("0.01\n0.1\n")
    (data / "tau_values.txt").write_text("0.5\n2.0\n")
    quick = [q for q in QUICK if not q.startswith("trainer.")]
    quick += ["trainer.epochs=4", "trainer.eval_every=2", "trainer.threads=1"]
    sweeps = {}
    for launcher in ("batched_wide", "basic"):
        sweep = tmp_path / launcher
        r = cli("train", "-m", "+experiment=gal_uci", "dataset.name=yacht",
                f"data_dir={tmp_path / 'data'}", f"hydra.sweep.dir={sweep}",
                f"hydra/launcher={launcher}", *quick)
        assert r.returncode == 0, r.stderr
        sweeps[launcher] = sweep
        if launcher == "batched_wide":
            log = r.stdout + r.stderr
            assert "Launching 12 jobs: 12 in 1 stacked batch, 0 one by one" in log
            assert "Launching 3 jobs: 3 in 1 stacked batch," in log and "alone" not in log
    batched, basic = sweeps["batched_wide"], sweeps["basic"]
    assert_rows_close(read_csv(batched / "protocol.csv"), read_csv(basic / "protocol.csv"),
                      "protocol.csv")
    runs = sorted(p.parent.relative_to(basic) for p in basic.glob("split*/**/summary.json"))
    assert len(runs) == 15
    for run in runs:
        assert_rows_close(read_csv(batched / run / "metrics.csv"),
                          read_csv(basic / run / "metrics.csv"), str(run))
        ours = json.loads((batched / run / "summary.json").read_text())
        theirs = json.loads((basic / run / "summary.json").read_text())
        assert ours["batched_members"] > 1
        scores = [k for k, v in theirs.items() if k.startswith(("test_", "val_", "best_"))
                  and isinstance(v, float)]
        assert "test_mc_ll" in scores
        for key in scores:
            assert math.isclose(ours[key], theirs[key], rel_tol=2e-4, abs_tol=1e-5), (run, key)


def test_stacked_noise_rows_are_each_members_own_noise_bit_for_bit():
    """One stacked_bernoulli_noise call gives row k exactly what bernoulli_noise draws from
    generator k (odd sizes included: the draw takes (n + 1) // 2 words), and leaves every
    generator where its own draw would."""
    from dropbench.dropout.standard import bernoulli_noise, stacked_bernoulli_noise

    ps = [0.05, 0.5, 0.9]
    for shape in ((7, 3), (4, 50)):
        stacked_gens = [torch.Generator().manual_seed(s) for s in range(3)]
        own_gens = [torch.Generator().manual_seed(s) for s in range(3)]
        rows = stacked_bernoulli_noise(shape, ps, torch.float32, "cpu", stacked_gens)
        for k, p in enumerate(ps):
            assert torch.equal(rows[k], bernoulli_noise(shape, p, torch.float32, "cpu",
                                                        own_gens[k]))
            assert torch.equal(stacked_gens[k].get_state(), own_gens[k].get_state())
        assert 0.3 < (rows[1] == 0).float().mean() < 0.7  # the rate is each row's own


def test_regression_scoring_with_member_dims_is_each_members_own():
    """RegressionTask.score_outputs on stacked outputs (K, B, 1), the stack's way, gives row k
    what it gives member k's outputs alone, and its loss is torch's mean squared error."""
    from dropbench.engine.regress import RegressionTask

    gen = torch.Generator().manual_seed(0)
    out = torch.randn(3, 9, 1, generator=gen, requires_grad=True)
    y = torch.randn(3, 9, generator=gen)
    losses, sums = RegressionTask.score_outputs(out, y)
    assert losses.shape == (3,) and sums.shape == (3, 3)
    losses.sum().backward()
    for k in range(3):
        alone = out[k].detach().clone().requires_grad_()
        loss, own = RegressionTask.score_outputs(alone, y[k])
        loss.backward()
        assert loss.item() == pytest.approx(losses[k].item(), rel=1e-6)
        assert torch.allclose(own, sums[k], rtol=1e-6)
        assert torch.allclose(alone.grad, out.grad[k], rtol=1e-6)
        assert loss.item() == pytest.approx(
            torch.nn.functional.mse_loss(out[k].squeeze(-1), y[k]).item(), rel=1e-6)
    shared = RegressionTask.score_outputs(out.detach(), y[0])[1]  # one batch for all members
    assert torch.allclose(shared[1], RegressionTask.score_outputs(out[1].detach(), y[0])[1])


def test_penalty_gradients_are_back_propagations_bit_for_bit(compose, tmp_path):
    """stack.add_penalty_gradients adds exactly what back-propagating each member's
    reg_k * sum(W_k**2) with its loss adds, as the lone run does."""
    root = tmp_path / "data"
    write_uci(root, n_rows=60, test_size=12, n_splits=3)
    cfgs = uci_cfgs(compose, root, dropout=False)
    bundles = [load_data(cfg.dataset, root, torch.device("cpu")) for cfg in cfgs]
    members = [member(cfg, b, tmp_path / "m") for cfg, b in zip(cfgs, bundles, strict=True)]
    runs = [r for r, _ in members]
    stack, _ = stack_of(runs, [g for _, g in members], bundles[0])
    data = MemberData([r.task for r in runs])
    x, y = data.gather("train", torch.arange(16).expand(3, 16))
    assert stack.l2  # every member declares its prior on both weight matrices

    def loss():
        return stack.task_step(runs[0].task, x, y, True)[0]

    with_graph = loss()
    for name, reg in stack.l2.items():  # the term as the lone run writes it, per member
        w = stack.params[name]
        with_graph = with_graph + reg * w.pow(2).sum(dim=tuple(range(1, w.dim())))
    with_graph.sum().backward()
    expected = [p.grad.clone() for p in stack.parameters()]
    for p in stack.parameters():
        p.grad = None
    loss().sum().backward()
    stack.add_penalty_gradients()
    for p, grad in zip(stack.parameters(), expected, strict=True):
        assert torch.equal(p.grad, grad)
