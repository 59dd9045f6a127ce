"""The Transformer families (model=vit, model=transformer_lm): shapes, where dropout lands and
at which rate, attention dropout's statistics, causal masking, DropPath per block, refusals,
and both through the CLI."""

import json
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf

from dropbench.config import TransformerLMConfig, ViTConfig
from dropbench.dropout import make_dropout
from dropbench.dropout.base import RateDropout
from dropbench.dropout.catalog import scheme_config
from dropbench.dropout.no_op import refuse_no_op_scheme
from dropbench.dropout.standard import BernoulliDropout
from dropbench.errors import DropbenchError
from dropbench.models.transformer import attend
from dropbench.models.transformer_lm import build_transformer_lm
from dropbench.models.vit import build_vit

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def vit_cfg(**values):
    return OmegaConf.merge(OmegaConf.structured(ViTConfig), {"name": "vit", **values})


def lm_cfg(**values):
    return OmegaConf.merge(OmegaConf.structured(TransformerLMConfig),
                           {"name": "transformer_lm", "dim": 32, "bptt": 16, **values})


def images(side: int):
    x = torch.zeros(2, 1, side, side)
    return SimpleNamespace(input_shape=(1, side, side), num_classes=10, task="classify",
                           train=SimpleNamespace(x=x))


TEXT = SimpleNamespace(task="lm", vocab_size=50)
STANDARD = scheme_config("standard", p=0.1, p_input=0.1, p_attn=0.1)


@pytest.mark.parametrize("side, patch, pool", [(8, 4, "mean"), (28, 7, "cls"), (32, 4, "mean")])
def test_vit_maps_images_to_class_scores(side, patch, pool):
    model = build_vit(vit_cfg(patch=patch, pool=pool, dim=32), STANDARD, images(side))
    assert model(torch.randn(5, 1, side, side)).shape == (5, 10)


def test_vit_refuses_a_patch_that_does_not_tile_the_image():
    with pytest.raises(DropbenchError, match=r"model.patch=5 does not divide .* 8x8 images"):
        build_vit(vit_cfg(patch=5), STANDARD, images(8))


def test_lm_reads_task_windows_and_carries_no_state():
    model = build_transformer_lm(lm_cfg(), STANDARD, TEXT)
    logits, state = model(torch.randint(0, 50, (16, 3)), "ignored")  # (T, B) windows
    assert logits.shape == (16, 3, 50) and state is None
    assert model.decoder.weight is model.embedding.weight  # tied by default
    untied = build_transformer_lm(lm_cfg(tied=False), STANDARD, TEXT)
    assert untied.decoder.weight is not untied.embedding.weight


def test_dropout_lands_at_the_declared_places_with_their_rates():
    model = build_vit(vit_cfg(depth=3, dim=32), scheme_config(
        "standard", p=[0.1, 0.2, 0.3], p_input=0.05, p_attn=0.15), images(8))
    rates = {name: m.p for name, m in model.named_modules() if hasattr(m, "dropout_place")}
    assert rates["drop_input"] == 0.05
    for i, p in enumerate([0.1, 0.2, 0.3]):
        assert rates[f"blocks.{i}.drop1"] == rates[f"blocks.{i}.drop2"] == p
        assert rates[f"blocks.{i}.attn.drop_attn"] == 0.15
    assert not any(".path" in name for name in rates)  # standard has no branch rate


def test_droppath_rate_rises_linearly_with_depth_on_both_branches():
    model = build_vit(vit_cfg(depth=4, dim=32), scheme_config("droppath", p_branch=0.3),
                      images(8))
    for i, block in enumerate(model.blocks):
        expected = 0.3 * i / 3  # 0 at the first block, p_branch at the last
        for path in (block.path1, block.path2):
            if expected == 0:
                assert isinstance(path, torch.nn.Identity)
            else:
                assert path.p == pytest.approx(expected) and path.dropout_scheme == "droppath"
        assert isinstance(block.drop1, torch.nn.Identity)  # droppath has no unit rates


def test_droppath_drops_whole_branches_per_example_at_the_declared_rate():
    torch.manual_seed(0)
    model = build_vit(vit_cfg(depth=4, dim=8, heads=2), scheme_config("droppath", p_branch=0.3),
                      images(8)).train()
    for i, block in enumerate(model.blocks[1:], start=1):
        p = 0.3 * i / 3
        for path in (block.path1, block.path2):
            flat = path(torch.ones(20_000, 5, 8)).flatten(1)  # (B, tokens * dim)
            dropped = (flat == 0).all(1)
            assert (dropped | (flat != 0).all(1)).all()  # all or nothing per example
            assert torch.allclose(flat[~dropped], torch.full_like(flat[~dropped], 1 / (1 - p)))
            # binomial: sd of the fraction <= sqrt(0.3 * 0.7 / 20000) = 0.0032; 4 sd
            assert abs(dropped.float().mean().item() - p) < 0.013, (i, p)


def test_a_rate_schedule_reaches_the_attention_dropout_too():
    from dropbench.dropout import hooks

    torch.manual_seed(6)
    cfg = scheme_config("standard", p=0.0, p_input=0.0, p_attn=0.5, schedule="early",
                        schedule_until=0.25)
    model = build_vit(vit_cfg(dim=16), cfg, images(8)).train()
    hooks.attach_schedule(model, cfg)
    x = torch.randn(3, 1, 8, 8)
    hooks.set_epoch(model, 0, 4)  # early: the full rate in the first quarter
    assert not torch.equal(model(x), model(x))
    hooks.set_epoch(model, 1, 4)  # then 0: the fused kernel gets dropout_p=0
    assert model.blocks[0].attn.drop_attn.p == 0
    assert torch.equal(model(x), model(x))


def test_fused_attention_dropout_keeps_the_expected_output():
    """SDPA's dropout_p on the probabilities: the mean output over many independent masks (one
    per batch element) equals the output without dropout, within 5 standard errors."""
    gen = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(1, 1, 6, 4, generator=gen) for _ in range(3))
    reference = attend(q, k, v, False, torch.nn.Identity())
    n = 20_000
    drop = BernoulliDropout(0.1).train()
    torch.manual_seed(2)
    samples = attend(*(t.expand(n, -1, -1, -1) for t in (q, k, v)), False, drop)
    mean = samples.mean(0, keepdim=True)
    stderr = samples.std(0, keepdim=True) / n ** 0.5
    assert (samples != reference).any()  # it does drop
    assert ((mean - reference).abs() <= 5 * stderr + 1e-6).all()
    drop.eval()
    assert torch.equal(attend(q, k, v, False, drop), reference)


class RecordingDropout(RateDropout):
    """A non-fused scheme module: drops like standard and keeps what it was given."""

    def drop(self, x, p):
        self.seen = x
        self.out = x * (torch.rand_like(x) >= p) / (1 - p)
        return self.out


def test_explicit_attention_path_drops_probabilities_at_rate_p():
    torch.manual_seed(3)
    q, k, v = (torch.randn(400, 2, 12, 4) for _ in range(3))
    drop = RecordingDropout(0.2).train()
    out = attend(q, k, v, True, drop)
    assert torch.allclose(drop.seen.sum(-1), torch.ones(400, 2, 12))  # softmax rows
    assert (drop.seen.triu(1) == 0).all()  # causal: no weight on later keys
    kept = drop.seen > 0
    zeroed = (drop.out[kept] == 0).float().mean().item()
    # 400*2*78 = 62,400 probabilities; sd sqrt(0.2 * 0.8 / 62400) = 0.0016; 4 sd
    assert abs(zeroed - 0.2) < 0.0064
    assert out.shape == (400, 2, 12, 4)
    assert torch.allclose(attend(q, k, v, True, drop.eval()),
                          attend(q, k, v, True, torch.nn.Identity()), atol=1e-6)


@pytest.mark.parametrize("family", ["vit", "lm"])
def test_eval_mode_is_deterministic_and_training_is_not(family):
    torch.manual_seed(4)
    if family == "vit":
        model, x = build_vit(vit_cfg(dim=32), STANDARD, images(8)), torch.randn(4, 1, 8, 8)
    else:
        model, x = build_transformer_lm(lm_cfg(), STANDARD, TEXT), torch.randint(0, 50, (16, 4))

    def run():
        out = model(x)
        return out[0] if isinstance(out, tuple) else out

    model.eval()
    assert torch.equal(run(), run())
    model.train()
    assert not torch.equal(run(), run())


def test_changing_a_future_token_leaves_earlier_logits_alone():
    torch.manual_seed(5)
    model = build_transformer_lm(lm_cfg(depth=2), STANDARD, TEXT).eval()
    tokens = torch.randint(0, 50, (16, 3))
    changed = tokens.clone()
    changed[9] = (changed[9] + 1) % 50
    before, after = model(tokens)[0], model(changed)[0]
    assert torch.equal(before[:9], after[:9])
    assert not torch.allclose(before[9:], after[9:])


def test_other_schemes_are_refused_in_one_line_naming_scheme_and_model():
    from dropbench.dropout.plan import check_dropout

    with pytest.raises(DropbenchError) as refused:
        check_dropout(vit_cfg(), scheme_config("gaussian", p=0.1))
    line = str(refused.value)
    assert "dropout=gaussian cannot drop the residual place" in line and "model=vit" in line
    assert "not token places; schemes that can: standard" in line


def test_a_scheme_that_builds_nothing_is_still_refused():
    zeros = scheme_config("standard", p=0.0, p_input=0.0, p_attn=0.0)
    with pytest.raises(DropbenchError, match="dropout=standard builds no dropout module in "
                       "model=vit.*dropout.p_input=0.0, dropout.p_attn=0.0, dropout.p=0.0"):
        refuse_no_op_scheme(vit_cfg(), zeros)
    refuse_no_op_scheme(vit_cfg(), zeros, overrides=["dropout.p=0"])  # asked for: runs
    with pytest.raises(DropbenchError, match="dropout=droppath builds no dropout.*p_branch"):
        refuse_no_op_scheme(lm_cfg(), scheme_config("droppath", p_branch=0.0))
    refuse_no_op_scheme(lm_cfg(), scheme_config("droppath"))  # 0.1 at the last block


def test_the_attention_module_of_standard_is_fused():
    place = next(p for p in __import__("dropbench.models.places", fromlist=["x"])
                 .transformer_places(vit_cfg()) if p.role == "attention")
    assert make_dropout(STANDARD, 0.1, place).fuses_with_attention


def test_list_shows_both_families_and_the_new_kinds(cli):
    lines = cli("list").stdout.splitlines()
    for name in ("vit", "transformer_lm"):
        assert any(line.split()[:1] == [name] for line in lines), name
    standard = next(line for line in lines if line.split()[:1] == ["standard"])
    assert standard.endswith("[dense, conv, sequence, token, attention]")


def test_both_families_train_end_to_end_through_the_cli(cli, tmp_path):
    vit = cli("train", "model=vit", "trainer.epochs=1", "trainer.progress=false",
              "hydra.run.dir=vit")
    assert vit.returncode == 0, vit.stderr
    summary = json.loads((tmp_path / "vit" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["test_acc"] > 0.2
    assert {e["place"] for e in summary["dropout_built"]} == {"input", "attention", "residual"}
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    words = [f"w{i % 37}" for i in range(3000)]
    for split, n in (("train", 2400), ("valid", 300), ("test", 300)):
        lines = [" ".join(words[i:i + 12]) for i in range(0, n, 12)]
        (corpus / f"{split}.txt").write_text("\n".join(lines) + "\n")
    lm = cli("train", "model=transformer_lm", "dataset=textdir", f"dataset.path={corpus}",
             "model.dim=32", "model.bptt=16", "dropout=droppath", "trainer.epochs=1",
             "trainer.progress=false", "hydra.run.dir=lm")
    assert lm.returncode == 0, lm.stderr
    summary = json.loads((tmp_path / "lm" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["test_ppl"] < 38  # < uniform over 37+
    assert {e["place"] for e in summary["dropout_built"]} == {"branch"}


def test_family_defaults_learning_settings(compose):
    vit = compose(["model=vit"])
    assert (vit.optim.name, vit.optim.lr, vit.optim.momentum, vit.optim.clip) == \
        ("sgd", 0.03, 0.9, 1.0)
    assert (vit.dropout.p, vit.dropout.p_input, vit.dropout.p_attn) == (0.1, 0.1, 0.1)
    adamw = compose(["model=vit", "optim=adamw"])
    assert (adamw.optim.lr, adamw.optim.clip) == (0.001, 1.0)
    lm = compose(["model=transformer_lm", "dataset=textdir", "optim=adamw"])
    assert lm.trainer.batch_size == 20 and lm.optim.clip == 1.0
    assert compose(["model=vit", "dropout=droppath"]).dropout.p_branch == 0.1


@pytest.mark.slow
def test_bench_case_times_both_families_against_plain_loops(tmp_path):
    from dropbench.bench import main

    result = main(["--cases", "transformer", "--scale", "0.01", "--reps", "1", "--warmup", "0",
                   "--threads", "1", "--out", str(tmp_path / "bench.json")])
    names = [r["name"] for r in result["rows"]]
    assert len(names) == 4 and all(r["available"] for r in result["rows"])
    assert [r["met"] is not None for r in result["ratios"]] == [True, True]
