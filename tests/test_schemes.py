"""Statistics of the dense dropout schemes on seeded tensors.

Tolerances are about 4-6 standard errors of the estimate at the stated sample size, so a
correct scheme passes and an off-by-a-factor one (missing 1/(1-p), wrong variance) fails.
"""

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from dropbench import DropbenchError
from dropbench.dropout.alpha import ALPHA_PRIME, AlphaDropout, alpha_affine
from dropbench.dropout.classic import ClassicDropout
from dropbench.dropout.concrete import ConcreteDropout, bernoulli_entropy
from dropbench.dropout.dropconnect import DropConnectConv2d, DropConnectLinear
from dropbench.dropout.gaussian import GaussianDropout
from dropbench.dropout.masked_linear import draw_masks
from dropbench.dropout.masks import keep_mask

N = 200_000  # elements for the moment checks
P = 0.3


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def moments(out: torch.Tensor):
    return out.mean().item(), out.var().item()


def mean_tol(var: float, n: int) -> float:
    return 5 * math.sqrt(var / n)  # 5 standard errors of a mean of n draws


# --- classic -------------------------------------------------------------------------------
def test_classic_train_is_unscaled_bernoulli():
    torch.manual_seed(0)
    x = torch.full((N,), 2.0)
    out = ClassicDropout(P).train()(x)
    assert set(out.unique().tolist()) == {0.0, 2.0}  # kept units are NOT rescaled
    assert abs((out == 0).float().mean().item() - P) < 0.005  # sd of the fraction: 0.001
    mean, var = moments(out)
    assert abs(mean - 2 * (1 - P)) < mean_tol(4 * P * (1 - P), N)
    assert var == pytest.approx(4 * P * (1 - P), rel=0.03)


def test_classic_eval_equals_train_expectation():
    torch.manual_seed(1)
    x = torch.randn(500)
    layer = ClassicDropout(P)
    t = 4000
    train_mean = torch.stack([layer.train()(x) for _ in range(t)]).mean(0)  # (500,)
    scaled = layer.eval()(x)
    assert torch.equal(scaled, x * (1 - P))
    tol = 5 * x.abs() * math.sqrt(P * (1 - P) / t) + 1e-6  # 5 sd of each element's mean
    assert ((train_mean - scaled).abs() <= tol).all()


def test_classic_gradient_reaches_only_kept_units():
    torch.manual_seed(2)
    x = torch.randn(N, requires_grad=True)
    out = ClassicDropout(P).train()(x)
    out.sum().backward()
    assert torch.equal(x.grad, (out != 0).float())  # 1 where kept, 0 where dropped


# --- gaussian ------------------------------------------------------------------------------
def test_gaussian_mean_and_variance():
    torch.manual_seed(3)
    out = GaussianDropout(P).train()(torch.full((N,), 2.0))
    var = 4 * P / (1 - P)  # x^2 p/(1-p): the variance of inverted Bernoulli dropout
    mean, v = moments(out)
    assert abs(mean - 2.0) < mean_tol(var, N)
    assert v == pytest.approx(var, rel=0.02)  # sd of a Gaussian sample variance: 0.3%


def test_gaussian_gradient_is_each_units_own_noise():
    torch.manual_seed(4)
    x = torch.randn(1000, requires_grad=True)
    out = GaussianDropout(P).train()(x)
    out.sum().backward()
    torch.testing.assert_close(x.grad, (out / x).detach())  # d(x * noise)/dx = noise


# --- alpha ---------------------------------------------------------------------------------
def test_alpha_keeps_zero_mean_unit_variance():
    torch.manual_seed(5)
    out = AlphaDropout(0.1).train()(torch.randn(N))
    mean, var = moments(out)
    assert abs(mean) < 0.015 and abs(var - 1) < 0.02


def test_alpha_moments_match_formula_for_any_input():
    torch.manual_seed(6)
    mu, nu, q = 0.5, 2.0, 1 - P
    x = mu + math.sqrt(nu) * torch.randn(N)
    a, b = alpha_affine(P)
    m1 = q * mu + (1 - q) * ALPHA_PRIME  # before the affine map
    var = a**2 * (q * (nu + mu**2) + (1 - q) * ALPHA_PRIME**2 - m1**2)
    mean, v = moments(AlphaDropout(P).train()(x))
    assert abs(mean - (a * m1 + b)) < mean_tol(var, N)
    assert v == pytest.approx(var, rel=0.03)


def test_alpha_gradient_reaches_only_kept_units():
    torch.manual_seed(7)
    x = torch.randn(N, requires_grad=True)
    AlphaDropout(P).train()(x).sum().backward()
    a, _ = alpha_affine(P)
    assert ((x.grad == 0) | torch.isclose(x.grad, torch.tensor(a))).all()  # a * keep mask
    assert abs((x.grad == 0).float().mean().item() - P) < 0.005


# --- dropconnect ---------------------------------------------------------------------------
def dropconnect_linear(p=P, **kw):
    torch.manual_seed(8)
    return DropConnectLinear(16, 4, p, **kw)


def linear_moments(layer, x0):
    """Formula: mean W x + b, variance p/(1-p) (sum_j W_ij^2 x_j^2 + b_i^2) per output unit
    (the b_i^2 term because biases are masked too, the default)."""
    w, b = layer.weight.detach(), layer.bias.detach()
    return w @ x0 + b, (w**2 @ x0**2 + b**2) * layer.p / (1 - layer.p)


@pytest.mark.parametrize("mode", ["train_per_example", "eval_gaussian"])
def test_dropconnect_linear_moments(mode):
    inference = "gaussian" if mode == "eval_gaussian" else "mean"
    layer = dropconnect_linear(per_example=True, inference=inference)
    layer.train(mode.startswith("train"))
    x0 = torch.randn(16)
    n = 100_000
    with torch.no_grad():
        out = layer(x0.expand(n, 16))  # (n, 4): n independent masks (or Gaussian draws)
    mean, var = linear_moments(layer, x0)
    assert ((out.mean(0) - mean).abs() < 5 * (var / n).sqrt()).all()
    torch.testing.assert_close(out.var(0), var, rtol=0.04, atol=0)


def test_dropconnect_per_batch_shares_one_mask():
    layer = dropconnect_linear().train()
    out = layer(torch.randn(16).expand(8, 16))
    assert torch.equal(out, out[:1].expand(8, 4))  # same input, same mask -> same output
    per_example = dropconnect_linear(per_example=True).train()(torch.randn(16).expand(8, 16))
    assert not torch.equal(per_example, per_example[:1].expand(8, 4))


@pytest.mark.parametrize("per_example", [False, True])
def test_dropconnect_masks_biases_unless_told_not_to(per_example):
    """On a zero input the output is the bias alone: each unit's bias kept (scaled 1/(1-p)) or
    dropped, in a fraction p of 4 x 2000 draws (sd 0.005, tolerance 0.03); with
    mask_bias=false it is the bias itself."""
    torch.manual_seed(9)
    layer = DropConnectLinear(16, 4, P, per_example=per_example).train()
    zeros = torch.zeros(2000 if per_example else 1, 16)
    with torch.no_grad():
        outs = torch.cat([layer(zeros) for _ in range(1 if per_example else 2000)])  # (2000, 4)
    bias = layer.bias.detach()
    kept = torch.isclose(outs, (bias / (1 - P)).expand_as(outs))
    assert bool((kept | (outs == 0)).all())
    assert abs((outs == 0).float().mean().item() - P) < 0.03
    layer.mask_bias = False
    with torch.no_grad():
        torch.testing.assert_close(layer(zeros), bias.expand(len(zeros), 4))


def test_per_example_chunks_equal_the_plain_formulation(monkeypatch):
    """The chunked per-example product gives the plain (B, out, in) formulation's output and
    gradients for the same masks (same RNG state), also when the batch spans many chunks."""
    from dropbench.dropout import masked_linear as ml

    monkeypatch.setattr(ml, "CHUNK_ELEMENTS", {"cpu": 130})  # 2 examples of 7x9 per chunk
    torch.manual_seed(13)
    x, w, b = (torch.randn(*s, requires_grad=True) for s in [(11, 9), (7, 9), (7,)])
    upstream = torch.randn(11, 7)
    results = []
    for fn in (ml.per_example_linear, ml.reference_per_example_linear):
        torch.manual_seed(14)
        out = fn(x, w, b, P)
        (out * upstream).sum().backward()
        results.append([out.detach()] + [t.grad.clone() for t in (x, w, b)])
        for t in (x, w, b):
            t.grad = None
    for fast, plain in zip(*results, strict=True):
        torch.testing.assert_close(fast, plain, rtol=1e-5, atol=1e-6)
    assert len(ml.chunks(11, 7, 9, x.device)) == 6


def test_dropconnect_mean_inference_is_the_plain_layer_and_deterministic():
    layer = dropconnect_linear().eval()
    x = torch.randn(5, 16)
    torch.testing.assert_close(layer(x), nn.functional.linear(x, layer.weight, layer.bias))
    assert torch.equal(layer(x), layer(x))


@pytest.mark.parametrize("per_example", [False, True])
def test_dropconnect_gradient_reaches_only_kept_weights(per_example):
    torch.manual_seed(10)
    layer = DropConnectLinear(256, 256, P, per_example=per_example).train()
    x = torch.randn(1, 256)  # one example, so the per-example mask is the whole story too
    state = torch.get_rng_state()
    layer(x).sum().backward()
    torch.set_rng_state(state)  # the same mask again, drawn by the reference
    if per_example:
        keep = draw_masks(1, layer.weight, True, P)[0].float().reshape(256, 256)
    else:
        keep = keep_mask((256, 256), 1 - P).float()  # dropconnect's per-batch mask draw
    # d/dW sum((W * keep/(1-p)) x) = keep/(1-p) * x^T, row by row
    torch.testing.assert_close(layer.weight.grad, keep / (1 - P) * x)
    assert torch.equal(layer.weight.grad == 0, keep == 0)
    assert abs((keep == 0).float().mean().item() - P) < 0.01  # sd of the fraction: 0.002


def test_dropconnect_conv_moments_and_per_example_plumbing():
    torch.manual_seed(11)
    conv = DropConnectConv2d(3, 4, 3, P, per_example=True, padding=1).train()
    x0 = torch.randn(1, 3, 5, 5)
    n = 20_000
    with torch.no_grad():
        out = conv(x0.expand(n, 3, 5, 5))  # (n, 4, 5, 5)
        mean = nn.functional.conv2d(x0, conv.weight, conv.bias, padding=1)[0]
        var = nn.functional.conv2d(x0**2, conv.weight**2, padding=1)[0] * P / (1 - P)
        var += (conv.bias**2 * P / (1 - P))[:, None, None]  # biases are masked too
    assert ((out.mean(0) - mean).abs() < 5 * (var / n).sqrt() + 1e-6).all()
    torch.testing.assert_close(out.var(0), var, rtol=0.08, atol=1e-4)
    # Examples must not mix in the grouped convolution: with a negligible rate, per-example
    # DropConnect on different inputs equals the plain convolution.
    tiny = DropConnectConv2d(3, 4, 3, 1e-9, per_example=True, stride=2).train()
    xs = torch.randn(6, 3, 7, 7)
    plain = nn.functional.conv2d(xs, tiny.weight, tiny.bias, stride=2)
    torch.testing.assert_close(tiny(xs), plain)


def test_dropconnect_conv_gradient_reaches_only_kept_weights():
    torch.manual_seed(12)
    conv = DropConnectConv2d(8, 8, 3, P).train()
    x = torch.randn(4, 8, 9, 9)
    state = torch.get_rng_state()
    conv(x).sum().backward()
    torch.set_rng_state(state)
    keep = keep_mask(conv.weight.shape, 1 - P).float()  # dropconnect's mask draw
    assert torch.equal(conv.weight.grad == 0, keep == 0)


def test_dropconnect_rejects_unknown_inference():
    with pytest.raises(DropbenchError, match="dropout.inference"):
        DropConnectLinear(4, 4, P, inference="median")


# --- concrete ------------------------------------------------------------------------------
def test_concrete_low_temperature_is_bernoulli_with_inverted_scaling():
    torch.manual_seed(13)
    layer = ConcreteDropout(P, temperature=1e-3).train()
    out = layer(torch.full((N,), 2.0)).detach()
    # As t -> 0 the relaxed mask becomes Bernoulli: output 0 or 2/(1-p).
    assert abs((out < 1e-3).float().mean().item() - P) < 0.005
    mean, var = moments(out)
    assert abs(mean - 2.0) < mean_tol(4 * P / (1 - P), N) + 0.01  # + relaxation bias
    assert var == pytest.approx(4 * P / (1 - P), rel=0.05)


def test_concrete_gradient_is_the_mask_and_eval_is_identity():
    torch.manual_seed(14)
    layer = ConcreteDropout(P, temperature=0.1)
    x = torch.randn(5000, requires_grad=True)
    out = layer.train()(x)
    out.sum().backward()
    torch.testing.assert_close(x.grad, (out / x).detach())  # each unit's own (relaxed) mask
    assert layer.p_logit.grad is not None  # the rate itself gets a gradient
    assert layer.eval()(x) is x


def test_concrete_regularizer_formula():
    reader = nn.Linear(10, 3)
    layer = ConcreteDropout(0.2, length_scale=0.5, dropout_reg=2.0)
    layer.bind_model(nn.Sequential(layer, reader), SimpleNamespace(train=range(100)))
    assert layer._reader == [reader] and layer.n_train == 100
    layer.train()(torch.randn(4, 10))
    p = torch.tensor(0.2)
    expected = (0.5**2 / 2 * reader.weight.pow(2).sum() / (1 - p)
                - 2.0 * 10 * bernoulli_entropy(p)) / 100
    torch.testing.assert_close(layer.regularizer(), expected)


def test_concrete_rate_moves_on_a_regression_problem():
    """Plenty of noise-free data: the data term favours little dropout, so p must fall."""
    torch.manual_seed(15)
    x = torch.randn(2048, 8)
    y = x @ torch.randn(8, 1)
    drop = ConcreteDropout(0.5, temperature=0.1)
    model = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), drop, nn.Linear(64, 1))
    drop.bind_model(model, SimpleNamespace(train=range(1_000_000)))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(200):
        idx = torch.randint(0, 2048, (128,))
        loss = nn.functional.mse_loss(model(x[idx]), y[idx]) + drop.regularizer()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert drop.p.item() < 0.35, drop.p.item()


# --- every scheme, through the model builder -------------------------------------------------
SCHEMES = ["classic", "gaussian", "dropconnect", "alpha", "concrete"]


def fake_data():
    return SimpleNamespace(input_shape=(64,), num_classes=10, train=range(500), task="classify")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_per_layer_rates_reach_each_layer(compose, scheme):
    from dropbench.models import build_model

    cfg = compose([f"dropout={scheme}", "model.hidden=[32,16]", "dropout.p=[0.1,0.4]"])
    model = build_model(cfg.model, cfg.dropout, fake_data())
    rates = [float(torch.as_tensor(m.p).detach()) for m in model.modules()
             if hasattr(m, "p") and not isinstance(m, nn.Sequential)]
    assert rates[-2:] == pytest.approx([0.1, 0.4])  # the two hidden layers, in order
    with pytest.raises(DropbenchError, match="give one number or a list of 2"):
        build_model(cfg.model, compose([f"dropout={scheme}", "model.hidden=[32,16]",
                                        "dropout.p=[0.1]"]).dropout, fake_data())


@pytest.mark.parametrize("scheme", SCHEMES)
def test_eval_is_deterministic_and_p0_is_plain(compose, scheme):
    from dropbench.models import build_model

    cfg = compose([f"dropout={scheme}", "model.hidden=[32]"])
    model = build_model(cfg.model, cfg.dropout, fake_data()).eval()
    x = torch.randn(7, 64)
    assert torch.equal(model(x), model(x))
    from dropbench.dropout import get_scheme

    zero_input = ["dropout.p_input=0"] if "p_input" in get_scheme(scheme).keys else []
    plain = compose([f"dropout={scheme}", "model.hidden=[32]", "dropout.p=0", *zero_input])
    plain_model = build_model(plain.model, plain.dropout, fake_data())
    assert all(type(m) in (nn.Linear, nn.ReLU, nn.Identity, nn.Flatten, nn.Sequential)
               for m in plain_model.modules() if m is not plain_model)


def test_selu_mlp_uses_lecun_normal_init(compose):
    from dropbench.models import build_model

    torch.manual_seed(16)
    cfg = compose(["dropout=alpha", "model.activation=selu", "model.hidden=[512,512]"])
    model = build_model(cfg.model, cfg.dropout, SimpleNamespace(input_shape=(256,), task="classify",
                                                                num_classes=10, train=[0]))
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert any(isinstance(m, nn.SELU) for m in model.modules())
    for m in linears:
        assert m.weight.std().item() == pytest.approx(1 / math.sqrt(m.in_features), rel=0.03)
        assert torch.equal(m.bias, torch.zeros_like(m.bias))
    # Self-normalisation: unit-variance inputs keep mean ~0, variance ~1 through the net.
    with torch.no_grad():
        h = model.net[:-1].eval()(torch.randn(4000, 256))
    assert abs(h.mean().item()) < 0.1 and abs(h.var().item() - 1) < 0.15
