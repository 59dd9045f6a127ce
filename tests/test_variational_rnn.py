"""The `variational` scheme (Gal & Ghahramani 2016): per-example masks drawn once per sequence,
including the one on h_{t-1}, run by the hand-written recurrences of dropout/recurrence.py."""

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from dropbench.data.text import LanguageModelData
from dropbench.dropout import recurrence
from dropbench.dropout.catalog import scheme_config
from dropbench.dropout.embedding import SequenceEmbeddingDropout
from dropbench.dropout.variational import VARIATIONAL_CELLS, unit_mask
from dropbench.models.rnn import build_rnn_lm

pytestmark = pytest.mark.usefixtures("one_torch_thread")
FUSED = {"lstm": nn.LSTM, "gru": nn.GRU}


def initial_state(cell, batch, hidden, dtype=torch.float32):
    h = torch.randn(1, batch, hidden, dtype=dtype)
    return (h, torch.randn(1, batch, hidden, dtype=dtype)) if cell == "lstm" else h


def flat(state):
    return torch.cat([s.flatten() for s in state]) if isinstance(state, tuple) else state.flatten()


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_the_loop_without_dropout_equals_the_fused_layer_with_its_gradients(cell):
    """Mask of ones: outputs, final state and every gradient match nn.LSTM / nn.GRU with the
    same weights (float64, to 1e-10: only the summation order differs)."""
    torch.manual_seed(0)
    layer = VARIATIONAL_CELLS[cell](6, 8, p=0.3).double()
    fused = FUSED[cell](6, 8).double()
    fused.load_state_dict(layer.state_dict())  # same parameter names and gate order
    x = torch.randn(7, 3, 6, dtype=torch.float64, requires_grad=True)
    state = initial_state(cell, 3, 8, torch.float64)
    out, new_state = layer.recurrence(x, state, torch.ones(3, 8, dtype=torch.float64))
    ref, ref_state = fused(x, state)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-10)
    torch.testing.assert_close(flat(new_state), flat(ref_state), rtol=0, atol=1e-10)
    weights = torch.randn_like(out)
    grads = torch.autograd.grad((out * weights).sum() + flat(new_state).sum(),
                                [x, *layer.parameters()])
    ref_grads = torch.autograd.grad((ref * weights).sum() + flat(ref_state).sum(),
                                    [x, *fused.parameters()])
    for got, expected in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_hand_written_backward_passes_gradcheck_with_a_mask(cell):
    torch.manual_seed(1)
    steps, batch, hidden, gates = 4, 3, 5, 4 if cell == "lstm" else 3

    def leaf(*shape):
        return torch.randn(*shape, dtype=torch.float64, requires_grad=True)

    mask = unit_mask(batch, hidden, 0.5, torch.empty(0)).double()
    pre, w = leaf(steps, batch, gates * hidden), leaf(gates * hidden, hidden)
    if cell == "lstm":
        inputs = (pre, w, leaf(batch, hidden), leaf(batch, hidden), mask)
        assert torch.autograd.gradcheck(recurrence.LSTMRecurrence.apply, inputs)
    else:
        inputs = (pre, w, leaf(gates * hidden), leaf(batch, hidden), mask)
        assert torch.autograd.gradcheck(recurrence.GRURecurrence.apply, inputs)


def masked_cell_loop(cell, layer, x, mask):
    """Reference: nn.LSTMCell / nn.GRUCell stepped by hand, h_{t-1} * mask at every step."""
    step = (nn.LSTMCell if cell == "lstm" else nn.GRUCell)(x.size(2), layer.hidden_size)
    step.load_state_dict({k.removesuffix("_l0"): v for k, v in layer.state_dict().items()})
    h = c = x.new_zeros(x.size(1), layer.hidden_size)
    outputs = []
    for t in range(x.size(0)):
        if cell == "lstm":
            h, c = step(x[t], (h * mask, c))
        else:  # the mask falls on the gates' projections; z * h keeps the undropped state
            r_z_n = nn.functional.linear(h * mask, layer.weight_hh_l0, layer.bias_hh_l0)
            pre = nn.functional.linear(x[t], layer.weight_ih_l0, layer.bias_ih_l0)
            r, z = torch.sigmoid(pre[:, :16] + r_z_n[:, :16]).chunk(2, 1)
            n = torch.tanh(pre[:, 16:] + r * r_z_n[:, 16:])
            h = (1 - z) * n + z * h
        outputs.append(h)
    return torch.stack(outputs)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_one_recurrent_mask_per_example_is_reused_at_every_step(cell):
    """A training forward equals a cell loop that multiplies h_{t-1} by the same (B, H) mask
    at all 12 steps: the mask the layer draws (same seed) is per example and per sequence."""
    torch.manual_seed(2)
    layer = VARIATIONAL_CELLS[cell](5, 8, p=0.5).train()
    x = torch.randn(12, 6, 5)
    torch.manual_seed(3)
    out, _ = layer(x)
    torch.manual_seed(3)
    mask = unit_mask(6, 8, 0.5, x)  # the draw the layer made
    torch.testing.assert_close(out, masked_cell_loop(cell, layer, x, mask))
    rows = {tuple(row.tolist()) for row in mask}
    assert len(rows) == 6  # each example its own mask (2^8 patterns; a clash is unlikely)
    with torch.no_grad():  # and the mask matters: without it the output differs
        assert not torch.allclose(out, masked_cell_loop(cell, layer, x, torch.ones(6, 8)))


def test_recurrent_mask_rate_and_scale_on_a_seeded_draw():
    torch.manual_seed(4)
    mask = unit_mask(200, 100, 0.3, torch.empty(0))
    assert abs((mask == 0).float().mean().item() - 0.3) < 0.01  # 20k draws: std 0.0032
    values = mask.unique().tolist()
    assert values[0] == 0.0 and values[1:] == [pytest.approx(1 / 0.7)]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_eval_mode_is_the_plain_fused_layer(cell):
    torch.manual_seed(5)
    layer = VARIATIONAL_CELLS[cell](4, 6, p=0.5).eval()
    fused = FUSED[cell](4, 6)
    fused.load_state_dict(layer.state_dict())
    x = torch.randn(5, 2, 4)
    assert torch.equal(layer(x)[0], fused(x)[0])


def test_sequence_word_dropout_is_per_example_and_tied_over_the_window():
    torch.manual_seed(6)
    emb = SequenceEmbeddingDropout(40, 8, p=0.5).train()
    tokens = torch.arange(40).repeat(3, 1).t().contiguous()  # (40, 3): all words, 3 columns
    tokens = torch.cat([tokens, tokens])  # every word twice in every column
    out = emb(tokens)  # (80, 3, 8)
    dropped = (out == 0).all(-1)  # (80, 3)
    assert torch.equal(dropped[:40], dropped[40:])  # a word's fate is fixed within the window
    assert not torch.equal(dropped[:, 0], dropped[:, 1])  # each example drops its own words
    assert 0.3 < dropped.float().mean().item() < 0.7  # 120 draws at p = 0.5
    torch.testing.assert_close(out[~dropped], 2 * emb.weight[tokens][~dropped])
    assert torch.equal(emb.eval()(tokens), emb.weight[tokens])


DATA = LanguageModelData(torch.arange(30), torch.arange(30), torch.arange(30),
                         [str(i) for i in range(30)])


def language_model(scheme, cell, **rates):
    model = {"name": cell, "hidden": [16, 16], "embed_size": None, "tied": False,
             "init_scale": 0.1, "bptt": 5}
    return build_rnn_lm(OmegaConf.create(model), scheme_config(scheme, **rates), DATA)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_identical_sequences_in_a_batch_get_different_outputs_in_training(cell):
    """Only the recurrent rate is set: `variational` drops h_{t-1} per example, so two copies of
    one sequence diverge; `locked`'s weight-drop shares one weight mask across the batch, so
    they do not."""
    tokens = torch.randint(30, (8, 1)).expand(8, 4)  # (T, B): four copies of one sequence
    torch.manual_seed(7)
    logits, _ = language_model("variational", cell, p_recurrent=0.5).train()(tokens)
    assert all(not torch.allclose(logits[:, 0], logits[:, b]) for b in range(1, 4))
    logits, _ = language_model("locked", cell, p_recurrent=0.5).train()(tokens)
    assert all(torch.equal(logits[:, 0], logits[:, b]) for b in range(1, 4))


def test_variational_model_trains_through_the_loop_and_carries_its_state():
    torch.manual_seed(8)
    model = language_model("variational", "lstm", p=0.3, p_input=0.3, p_output=0.3,
                           p_recurrent=0.3, p_embed=0.1).train()
    tokens = torch.randint(30, (5, 3))
    logits, state = model(tokens)
    logits, _ = model(tokens, state)
    logits.logsumexp(-1).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert "per example, per sequence" in repr(model.layers[0])
