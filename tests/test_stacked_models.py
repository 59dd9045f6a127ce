"""The generic stack of a batched sweep (dropbench/sweep/vmapped.py, stacked_optim.py,
stackable.py): every member, stacked with others that differ in seed, dropout rates, optimiser
settings and training rows, trains as its lone run does (Run.train_epoch)."""

import csv
import dataclasses
import json

import pytest
import torch

from dropbench.data import load_data
from dropbench.engine.optim import weight_matrices
from dropbench.engine.tasks import TASKS
from dropbench.engine.trainer import Run
from dropbench.models import build_model
from dropbench.sweep.batch import stacked_epoch
from dropbench.sweep.stackable import why_not_stacked
from dropbench.sweep.stacked_optim import StackedOptimizer
from dropbench.sweep.vmapped import StackedModel

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = ["dataset=digits", "dataset.train_subset=64", "trainer.batch_size=16",
         "trainer.progress=false"]
MODELS = {"mlp": ["model=mlp", "model.hidden=[24,16]", "dropout=standard"],
          "lenet": ["model=lenet", "model.hidden=[24]", "dropout=spatial"]}
# Three members per optimiser: each its own seed, dropout rate and hyperparameters.
MEMBERS = {
    "sgd": [["optim=sgd", "optim.lr=0.1", "optim.momentum=0.9", "optim.nesterov=true",
             "optim.weight_decay=0.001"],
            ["optim=sgd", "optim.lr=0.05", "optim.momentum=0"],
            ["optim=sgd", "optim.lr=0.2", "optim.momentum=0.5", "optim.max_norm=0.6"]],
    "adam": [["optim=adam", "optim.lr=0.01"],
             ["optim=adam", "optim.lr=0.003", "optim.beta1=0.5", "optim.beta2=0.99",
              "optim.eps=1e-6", "optim.weight_decay=0.01"],
             ["optim=adamw", "optim.lr=0.02", "optim.beta1=0.8", "optim.weight_decay=0.1"]],
}


def member_cfgs(compose, model: str, optim: str, rates=(0.0, 0.3, 0.6)) -> list:
    return [compose([*SMALL, *MODELS[model], *MEMBERS[optim][k], f"seed={k}",
                     f"dropout.p={p}", "dropout.p_input=0"])
            for k, p in enumerate(rates)]


def lone_run(cfg, data, tmp_path) -> Run:
    """The run `dropbench train` would make: seeded, built, ready for its epochs."""
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, cfg.dropout, data)
    return Run(cfg, tmp_path / f"run{cfg.seed}", TASKS[data.task](cfg, data), model,
               torch.device("cpu"))


def member(cfg, data, tmp_path):
    """(run, dropout generator): a lone run built the same way, and the generator holding the
    state its lone run's global stream has once the model is built."""
    run = lone_run(cfg, data, tmp_path)
    generator = torch.Generator()
    generator.set_state(torch.get_rng_state())
    return run, generator


def stack_of(runs, generators, data):
    stack = StackedModel([r.model for r in runs], generators, data.train.x[:1])
    constrained = {id(w) for w in weight_matrices(runs[0].model)}
    weights = [i for i, p in enumerate(runs[0].model.parameters()) if id(p) in constrained]
    optimizer = StackedOptimizer(stack.parameters(), [r.optimizer for r in runs],
                                 [r.cfg.optim.max_norm for r in runs], weights,
                                 stack.transposed_indices())
    return stack, optimizer


def take(stack, optimizer, runs) -> None:
    with torch.no_grad():
        for k, run in enumerate(runs):
            for p, value in zip(run.model.parameters(), stack.member_tensors(k), strict=True):
                p.copy_(value)
            optimizer.write_back(k)


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=2e-5, msg=name)


@pytest.mark.parametrize("model,optim", [("mlp", "sgd"), ("mlp", "adam"), ("lenet", "sgd"),
                                         ("lenet", "adam")])
@pytest.mark.parametrize("dropout", [False, True])
def test_each_stacked_member_trains_as_its_lone_run(compose, tmp_path, model, optim, dropout):
    """Seeds, rates and optimiser settings differ per member; after an epoch (4 steps) each
    member's weights, optimiser state, scores and max-norm count are its lone run's. With
    dropout on the masks must be the lone run's bit for bit, else the weights part at once."""
    cfgs = member_cfgs(compose, model, optim, (0.0, 0.3, 0.6) if dropout else (0.0,) * 3)
    data = load_data(cfgs[0].dataset, tmp_path, torch.device("cpu"))
    members = [member(cfg, data, tmp_path / "stacked") for cfg in cfgs]
    runs = [r for r, _ in members]
    assert why_not_stacked([r.model for r in runs]) is None
    stack, optimizer = stack_of(runs, [g for _, g in members], data)
    task = runs[0].task
    sums, projected = stacked_epoch(stack, optimizer, task, data.train, task.batch_size,
                                    [r.shuffle for r in runs])
    take(stack, optimizer, runs)
    for k, cfg in enumerate(cfgs):
        alone = lone_run(cfg, data, tmp_path / "alone")
        scores = alone.train_epoch()
        assert_same_weights(runs[k].model, alone.model)
        assert task.finish(sums[k])["acc"] == scores["acc"]
        assert task.finish(sums[k])["loss"] == pytest.approx(scores["loss"], rel=1e-5)
        if cfg.optim.max_norm is not None:
            assert projected[k].item() == scores["max_norm_projected"] > 0
        ours, theirs = runs[k].optimizer.state_dict(), alone.optimizer.state_dict()
        for i, state in theirs["state"].items():
            for key, value in state.items():
                torch.testing.assert_close(ours["state"][i][key].float(), value.float(),
                                           rtol=1e-4, atol=1e-5)


def test_members_train_on_their_own_rows(compose, tmp_path):
    """Member k trains on rows[k] of a shared pool, as its lone run on just those rows."""
    cfgs = member_cfgs(compose, "mlp", "sgd")
    pool = load_data(cfgs[0].dataset.copy(), tmp_path, torch.device("cpu"))
    rows = [torch.arange(0, 48), torch.arange(16, 64), torch.arange(63, -1, -4).repeat(4)]
    rows[2] = rows[2][:48]
    members = [member(cfg, pool, tmp_path) for cfg in cfgs]
    runs = [r for r, _ in members]
    stack, optimizer = stack_of(runs, [g for _, g in members], pool)
    stacked_epoch(stack, optimizer, runs[0].task, pool.train, 16, [r.shuffle for r in runs],
                  rows)
    take(stack, optimizer, runs)
    for k, cfg in enumerate(cfgs):
        own = dataclasses.replace(pool, train=type(pool.train)(pool.train.x[rows[k]],
                                                               pool.train.y[rows[k]]))
        alone = lone_run(cfg, own, tmp_path)
        alone.train_epoch()
        assert_same_weights(runs[k].model, alone.model)
    with pytest.raises(ValueError, match="row sets of one size"):
        stacked_epoch(stack, optimizer, runs[0].task, pool.train, 16,
                      [r.shuffle for r in runs], [rows[0], rows[1], rows[2][:40]])


def test_a_stopped_member_leaves_and_the_others_go_on_unchanged(compose, tmp_path):
    """After an epoch member 1 stops; the stack is rebuilt from the others' models and
    optimiser states (the path a resumed member takes too) and their second epoch is still
    their lone runs' second epoch."""
    cfgs = member_cfgs(compose, "lenet", "adam")
    data = load_data(cfgs[0].dataset, tmp_path, torch.device("cpu"))
    members = [member(cfg, data, tmp_path) for cfg in cfgs]
    runs, generators = [r for r, _ in members], [g for _, g in members]
    stack, optimizer = stack_of(runs, generators, data)
    stacked_epoch(stack, optimizer, runs[0].task, data.train, 16, [r.shuffle for r in runs])
    take(stack, optimizer, runs)
    still = [0, 2]
    stack, optimizer = stack_of([runs[k] for k in still], [generators[k] for k in still], data)
    assert stack.size == 2 and stack.parameters()[0].shape[0] == 2
    stacked_epoch(stack, optimizer, runs[0].task, data.train, 16,
                  [runs[k].shuffle for k in still])
    take(stack, optimizer, [runs[k] for k in still])
    for k in still:
        alone = lone_run(cfgs[k], data, tmp_path)
        alone.train_epoch()
        alone.train_epoch()
        assert_same_weights(runs[k].model, alone.model)


def test_each_member_draws_its_own_noise_at_its_own_rate():
    """Standard dropout at rates 0, 0.25, 0.6: the fraction of zeros is each member's rate
    (60,000 draws each: 5 sigma < 0.01), survivors scaled by 1/(1-p), the members' masks are
    uncorrelated, and member k's mask is what its module draws from the same stream."""
    from dropbench.dropout.standard import BernoulliDropout

    rates = (0.0, 0.25, 0.6)
    models = [torch.nn.Sequential(torch.nn.Linear(3, 600), BernoulliDropout(p) if p else
                                  torch.nn.Identity(), torch.nn.Linear(600, 2)) for p in rates]
    for m in models[1:]:
        m.load_state_dict(models[0].state_dict())
    generators = [torch.Generator().manual_seed(k) for k in range(3)]
    stack = StackedModel(models, generators, torch.zeros(1, 3))
    noise = stack.draw_noise(100)["1"]  # (3 members, 100 examples, 600 units)
    assert noise.shape == (3, 100, 600) and torch.equal(noise[0], torch.ones(100, 600))
    for k in (1, 2):
        p = rates[k]
        assert abs((noise[k] == 0).float().mean().item() - p) < 0.01
        assert torch.allclose(noise[k][noise[k] != 0], torch.tensor(1 / (1 - p)))
        torch.manual_seed(k)
        lone = models[k][1].drop(torch.ones(100, 600), p)  # the lone run's draw, global stream
        assert torch.equal(noise[k], lone)
    dropped = (noise[1:] == 0).float().flatten(1)
    assert abs(torch.corrcoef(dropped)[0, 1].item()) < 0.02  # independent streams


@pytest.mark.parametrize("train", [True, False])
def test_the_mlp_chain_gives_what_vmap_gives(compose, tmp_path, train):
    """The MLP declares its sequential forward, so the stack runs it as a chain of batched
    products; LeNet does not qualify and goes through vmap. The chain's losses and sums equal
    the vmapped functional_call's on the same members, batches and noise."""
    cfgs = member_cfgs(compose, "mlp", "sgd")
    data = load_data(cfgs[0].dataset, tmp_path, torch.device("cpu"))
    runs = [r for r, _ in (member(cfg, data, tmp_path) for cfg in cfgs)]
    stack = StackedModel([r.model for r in runs], [torch.Generator().manual_seed(k)
                                                   for k in range(3)], data.train.x[:1])
    assert stack.chain is not None
    x, y = data.train.x[:10].expand(3, *data.train.x[:10].shape), data.train.y[:10].expand(3, 10)
    noise = stack.draw_noise(10)
    chained = stack.task_step(runs[0].task, x, y, train, noise)
    stack.chain = None
    vmapped = stack.task_step(runs[0].task, x, y, train, noise)
    for ours, theirs in zip(chained, vmapped, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-6)
    lenet = lone_run(compose([*SMALL, *MODELS["lenet"]]), data, tmp_path)
    assert StackedModel([lenet.model], [torch.Generator()], data.train.x[:1]).chain is None


def test_models_that_cannot_stack_say_why(compose, tmp_path):
    def models(*overrides):
        cfg = compose([*SMALL, *overrides])
        data = load_data(cfg.dataset, tmp_path, torch.device("cpu"))
        return [build_model(cfg.model, cfg.dropout, data) for _ in range(2)]

    assert why_not_stacked(models(*MODELS["lenet"], "dropout.p=0.3")) is None
    assert "BatchNorm2d keeps running state" in why_not_stacked(
        models(*MODELS["lenet"], "model.batchnorm=true"))
    assert "dropout=dropconnect at net.2 draws its noise inside the layer" in why_not_stacked(
        models("model=mlp", "model.hidden=[8]", "dropout=dropconnect", "dropout.p=0.5"))
    assert "dropout=dropblock at features.4 draws its noise inside" in why_not_stacked(
        models("model=lenet", "dropout=dropblock", "dropout.p=0.2"))


def test_an_unstackable_batch_runs_alone_with_one_line(cli, tmp_path):
    r = cli("train", "-m", "hydra/launcher=batched", "model=lenet", "model.batchnorm=true",
            "seed=0,1", "trainer.epochs=1", "dataset.train_subset=64",
            "trainer.progress=false", "~hydra.callbacks.report", "hydra.sweep.dir=sweep")
    assert r.returncode == 0, r.stderr
    out = r.stdout + r.stderr
    assert out.count("alone: BatchNorm2d keeps running state (features.2.running_mean)") == 2
    statuses = [p.read_text() for p in (tmp_path / "sweep").glob("*/summary.json")]
    assert len(statuses) == 2 and all('"status": "completed"' in s for s in statuses)
    assert all('"batched_members"' not in s for s in statuses)


@pytest.mark.slow
def test_a_batched_lenet_adam_sweep_resumes_as_it_runs_straight(cli, tmp_path):
    """Two LeNet members with Adam at different lr: one epoch, then resumed to two, gives
    every metrics.csv row and the weights of the sweep run for two epochs at once."""
    args = ["train", "-m", "hydra/launcher=batched", "model=lenet", "optim=adam",
            "optim.lr=0.001,0.003", "dataset.train_subset=64", "trainer.progress=false",
            "~hydra.callbacks.report"]
    for extra in (["trainer.epochs=1"], ["trainer.epochs=2", "trainer.resume=true"]):
        r = cli(*args, *extra, "hydra.sweep.dir=resumed")
        assert r.returncode == 0, r.stderr
    r = cli(*args, "trainer.epochs=2", "hydra.sweep.dir=straight")
    assert r.returncode == 0, r.stderr
    assert "2 in 1 stacked batch," in r.stdout + r.stderr

    def metrics(run):
        with open(run / "metrics.csv") as f:
            return [{k: float(v) for k, v in row.items() if k != "seconds"}
                    for row in csv.DictReader(f)]

    def runs(sweep):
        return {next(o for o in json.loads(p.read_text())["overrides"]
                     if o.startswith("optim.lr=")): p.parent
                for p in (tmp_path / sweep).glob("*/summary.json")}

    resumed, straight = runs("resumed"), runs("straight")
    assert len(resumed) == 2 and resumed.keys() == straight.keys()
    for key, run in resumed.items():
        rows = metrics(run)
        assert [r["epoch"] for r in rows] == [1, 2]
        for ours, theirs in zip(rows, metrics(straight[key]), strict=True):
            assert ours == pytest.approx(theirs, rel=1e-5, abs=1e-6)
        w = torch.load(run / "checkpoints" / "last.pt", weights_only=False)["model"]
        v = torch.load(straight[key] / "checkpoints" / "last.pt", weights_only=False)["model"]
        for name in w:
            torch.testing.assert_close(w[name], v[name], rtol=1e-5, atol=1e-6)


def test_a_rate_applied_outside_its_module_is_found():
    """A model that reads its dropout module's rate and drops elsewhere (as attention fused
    into scaled_dot_product_attention does) never calls the module: the stack says so."""
    from dropbench.dropout.standard import BernoulliDropout

    class ReadsItsRate(torch.nn.Module):
        def __init__(self, p):
            super().__init__()
            self.lin, self.drop = torch.nn.Linear(3, 4), BernoulliDropout(p)

        def forward(self, x):
            return torch.nn.functional.dropout(self.lin(x), self.drop.p, self.training)

    models = [ReadsItsRate(0.2), ReadsItsRate(0.2)]
    assert why_not_stacked(models) is None  # the rules alone cannot see it
    stack = StackedModel(models, [torch.Generator(), torch.Generator()], torch.zeros(1, 3))
    assert stack.uncalled_slots() == ["drop"]


def test_classification_scoring_with_member_dims_is_each_members_own():
    """ClassificationTask.score_outputs on stacked logits (K, B, C), the stack's way, gives
    row k what the lone step gives member k: its cross-entropy, gradient and sums, with each
    member's own labels or one batch's for all."""
    from dropbench.engine.tasks import ClassificationTask

    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 9, 5, generator=gen, requires_grad=True)
    y = torch.randint(0, 5, (3, 9), generator=gen)
    losses, sums = ClassificationTask.score_outputs(logits, y)
    assert losses.shape == (3,) and sums.shape == (3, 3)
    losses.sum().backward()
    for k in range(3):
        alone = logits[k].detach().clone().requires_grad_()
        loss, own = ClassificationTask.step(None, lambda x: x, (alone, y[k]))
        loss.backward()
        assert loss.item() == pytest.approx(losses[k].item(), rel=1e-6)
        torch.testing.assert_close(own, sums[k], rtol=1e-6, atol=0)
        torch.testing.assert_close(alone.grad, logits.grad[k], rtol=1e-5, atol=1e-8)
    shared_losses, shared = ClassificationTask.score_outputs(logits.detach(), y[0])
    for k in range(3):
        loss, own = ClassificationTask.step(None, lambda x: x, (logits[k].detach(), y[0]))
        assert loss.item() == pytest.approx(shared_losses[k].item(), rel=1e-6)
        torch.testing.assert_close(own, shared[k], rtol=1e-6, atol=0)
