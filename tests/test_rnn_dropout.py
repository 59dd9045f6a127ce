"""Recurrent dropout schemes and the LSTM/GRU language models built from the registry."""

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from dropbench import DropbenchError
from dropbench.data.text import LanguageModelData
from dropbench.dropout import Place, get_scheme, make_embedding, make_recurrent
from dropbench.dropout.catalog import scheme_config
from dropbench.dropout.embedding import EmbeddingDropout
from dropbench.dropout.gate import GateDropoutRNN
from dropbench.dropout.locked import LockedDropout
from dropbench.dropout.weight_drop import WeightDropRNN
from dropbench.models.rnn import build_rnn_lm


def test_locked_mask_is_shared_across_time_and_differs_across_sequences():
    torch.manual_seed(0)
    out = LockedDropout(0.5).train()(torch.ones(30, 8, 64))  # (T, B, H)
    assert torch.equal(out, out[:1].expand_as(out))  # every time step has the same mask
    masks = out[0] > 0  # (B, H)
    assert all(not torch.equal(masks[0], masks[b]) for b in range(1, 8))
    assert set(out.unique().tolist()) <= {0.0, 2.0}  # kept units scaled by 1/(1-p)


def test_locked_dropout_rate_and_mean_on_a_seeded_tensor():
    torch.manual_seed(1)
    out = LockedDropout(0.3).train()(torch.ones(5, 200, 100))
    dropped = (out[0] == 0).float().mean().item()
    assert abs(dropped - 0.3) < 0.01  # 20k Bernoulli draws: std 0.0032
    assert abs(out.mean().item() - 1.0) < 0.02  # inverted scaling keeps the mean


def test_locked_dropout_is_identity_in_eval_and_at_p0():
    x = torch.randn(4, 3, 5)
    assert torch.equal(LockedDropout(0.5).eval()(x), x)
    assert torch.equal(LockedDropout(0.0).train()(x), x)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_weight_drop_changes_weight_hh_each_training_forward_and_never_in_eval(cell):
    torch.manual_seed(0)
    layer = WeightDropRNN(cell, 6, 8, p=0.5)
    stored = layer.rnn.weight_hh_l0.detach().clone()
    x = torch.randn(5, 3, 6)
    layer.train()
    w1, w2 = layer.effective_weights()["weight_hh_l0"], layer.effective_weights()["weight_hh_l0"]
    assert not torch.equal(w1, w2)  # a fresh mask each call
    assert abs((w1 == 0).float().mean().item() - 0.5) < 0.06  # 192 or 256 weights
    assert not torch.equal(layer(x)[0], layer(x)[0])
    layer.eval()
    assert torch.equal(layer.effective_weights()["weight_hh_l0"], layer.rnn.weight_hh_l0)
    assert torch.equal(layer.rnn.weight_hh_l0, stored)  # the parameter itself never changes
    plain = nn.LSTM(6, 8) if cell == "lstm" else nn.GRU(6, 8)
    plain.load_state_dict(layer.rnn.state_dict())  # after training forwards, eval is plain
    torch.testing.assert_close(layer(x)[0], plain(x)[0], rtol=0, atol=0)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_weight_drop_runs_the_kernel_with_the_dropped_matrix(cell):
    torch.manual_seed(0)
    layer = WeightDropRNN(cell, 6, 8, p=0.5).train()
    x = torch.randn(5, 3, 6)
    reference = nn.LSTM(6, 8) if cell == "lstm" else nn.GRU(6, 8)
    reference.load_state_dict(layer.rnn.state_dict())
    torch.manual_seed(7)
    out, _ = layer(x)
    torch.manual_seed(7)  # the same draw again, applied by hand to a plain copy
    with torch.no_grad():
        reference.weight_hh_l0.copy_(layer.effective_weights()["weight_hh_l0"])
    torch.testing.assert_close(out, reference(x)[0])
    out.sum().backward()  # gradients reach the stored weight through the mask
    assert layer.rnn.weight_hh_l0.grad is not None


def test_embedding_dropout_drops_whole_words():
    torch.manual_seed(0)
    emb = EmbeddingDropout(50, 16, p=0.5).train()
    tokens = torch.arange(50).repeat(4, 1)  # (4, 50): every word at every step
    out = emb(tokens)  # (4, 50, 16)
    zero_words = (out == 0).all(-1)  # (4, 50)
    assert torch.equal(zero_words, zero_words[:1].expand_as(zero_words))  # same words each step
    assert 10 < zero_words[0].sum() < 40
    kept = ~zero_words[0]
    torch.testing.assert_close(out[0, kept], 2 * emb.weight[kept])
    assert torch.equal(emb.eval()(tokens), emb.weight[tokens])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gate_layer_without_dropout_equals_the_fused_kernel(cell):
    torch.manual_seed(0)
    gate = GateDropoutRNN(cell, 6, 8, p=0.0)
    fused = nn.LSTM(6, 8) if cell == "lstm" else nn.GRU(6, 8)
    fused.load_state_dict(gate.state_dict())  # same names, same gate order
    x = torch.randn(7, 3, 6)
    out, state = gate(x)
    ref, ref_state = fused(x)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(gate(x[4:], state)[0], fused(x[4:], ref_state)[0])


def test_gate_dropout_keeps_the_memory_of_a_dropped_unit():
    """With every update dropped (mask of zeros), an LSTM cell keeps f * c: nothing is added."""
    torch.manual_seed(0)
    gate = GateDropoutRNN("lstm", 4, 5, p=0.5).train()
    c0 = torch.randn(1, 2, 5)
    with torch.no_grad():
        gate.bias_ih_l0[5:10] = 50.0  # forget gate saturated at 1
    gate.p = 1 - 1e-9  # effectively every unit dropped, survivors impossible
    _, (h, c) = gate(torch.randn(3, 2, 4), (torch.zeros(1, 2, 5), c0))
    torch.testing.assert_close(c, c0)


def counting_lstm(mask: str) -> GateDropoutRNN:
    """An LSTM gate layer whose cell adds its (masked) update 1 at every step: input and forget
    gates saturated at 1, candidate tanh(50) = 1, no weights. So c_T = sum over t of mask_t."""
    gate = GateDropoutRNN("lstm", 2, 400, p=0.5, mask=mask).train()
    with torch.no_grad():
        for w in gate.parameters():
            w.zero_()
        gate.bias_ih_l0[:1200] = 50.0  # i, f, g of nn.LSTM's (i, f, g, o) order
    return gate


@pytest.mark.parametrize("mask", ["per_sequence", "per_step"])
def test_gate_masks_per_sequence_or_per_step(mask):
    """T = 10 steps at p = 0.5, kept updates scaled by 2, 8 examples x 400 units. A mask per
    sequence gives c_T in {0, 20} only; a mask per step gives Binomial(10, 0.5) * 2, which is 0
    or 20 with probability 2/1024, so over 3200 cells at least 95 % lie strictly between."""
    torch.manual_seed(0)
    _, (_, c) = counting_lstm(mask)(torch.zeros(10, 8, 2))
    c = c[0]  # (B, H)
    assert c.mean().item() == pytest.approx(10.0, abs=0.5)  # E[c_T] = T: sd of the mean ~0.06
    between = ((c > 0.5) & (c < 19.5)).float().mean().item()
    if mask == "per_sequence":
        assert between == 0.0 and set(c.round().unique().tolist()) == {0.0, 20.0}
        assert not torch.equal(c[0], c[1])  # each example draws its own mask
    else:
        assert between > 0.95
    gate = counting_lstm(mask).eval()
    _, (_, c_eval) = gate(torch.zeros(10, 8, 2))
    torch.testing.assert_close(c_eval, torch.full_like(c_eval, 10.0))  # no mask in eval


def dropout_cfg(name, **rates):
    """The scheme's typed config with these rates wherever the scheme has the key."""
    keys = get_scheme(name).keys
    base = {"p": 0.3, "p_input": 0.3, "p_output": 0.3, "p_recurrent": 0.3, "p_embed": 0.1}
    return scheme_config(name, **{k: v for k, v in {**base, **rates}.items() if k in keys})


ALL_ZERO = {"p": 0.0, "p_input": 0.0, "p_output": 0.0, "p_recurrent": 0.0, "p_embed": 0.0}


def model_cfg(cell, **kw):
    return OmegaConf.create({"name": cell, "hidden": [12, 12], "embed_size": None, "tied": False,
                             "init_scale": 0.1, "bptt": 5, **kw})


DATA = LanguageModelData(torch.arange(30), torch.arange(30), torch.arange(30),
                         [str(i) for i in range(30)])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("scheme, rates", [
    ("none", ALL_ZERO),
    ("standard", {}),
    ("variational", {}),
    ("locked", {}),
    ("weight_drop", {}),
    ("gate", {}),
])
def test_every_scheme_trains_and_evaluates_both_cells(cell, scheme, rates):
    torch.manual_seed(0)
    model = build_rnn_lm(model_cfg(cell), dropout_cfg(scheme, **rates), DATA)
    tokens = torch.randint(30, (5, 3))
    logits, state = model.train()(tokens)
    assert logits.shape == (5, 3, 30) and len(state) == 2
    logits.logsumexp(-1).mean().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    first, state = model(tokens)
    assert torch.equal(first, model(tokens)[0])  # eval is deterministic
    assert model(tokens, state)[0].shape == (5, 3, 30)  # the state feeds the next window


def test_tied_weights_share_one_matrix_and_check_sizes():
    model = build_rnn_lm(model_cfg("lstm", hidden=[12, 8], embed_size=8, tied=True),
                         dropout_cfg("locked"), DATA)
    assert model.decoder.weight is model.embedding.weight
    with pytest.raises(DropbenchError, match="model.tied=true needs"):
        build_rnn_lm(model_cfg("lstm", tied=True, embed_size=8), dropout_cfg("none", **ALL_ZERO),
                     DATA)


def test_init_scale_bounds_every_parameter():
    model = build_rnn_lm(model_cfg("gru", init_scale=0.05), dropout_cfg("none", **ALL_ZERO), DATA)
    assert max(p.abs().max().item() for p in model.parameters()) <= 0.05


def test_standard_scheme_refuses_recurrent_and_embedding_rates():
    """`standard` has no p_recurrent/p_embed keys; asked directly, the registry refuses."""
    cfg = dropout_cfg("standard")
    with pytest.raises(DropbenchError, match="schemes that can: gate, .*dropout.p_recurrent=0"):
        make_recurrent(cfg, "lstm", 4, 4, 0.3, Place("recurrent", "p_recurrent", "recurrent"))
    with pytest.raises(DropbenchError, match="dropout.p_embed=0"):
        make_embedding(cfg, 10, 4, 0.3, Place("embedding", "p_embed", "embedding"))
