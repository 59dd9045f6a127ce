"""Standard (inverted) dropout: statistics on seeded tensors, with stated tolerances."""

import pytest
import torch
from omegaconf import OmegaConf

from dropbench import DropbenchError
from dropbench.dropout import Place, make_dropout
from dropbench.dropout.standard import BernoulliDropout

N = 1_000_000  # elements: the drop fraction's standard error is <= 0.0005, so 0.003 is ~6 sigma


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_drop_fraction_and_inverted_scaling(p):
    torch.manual_seed(0)
    x = torch.ones(N)
    y = BernoulliDropout(p).train()(x)
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - p) < 0.003
    kept = y[y != 0]
    assert torch.allclose(kept, torch.full_like(kept, 1 / (1 - p)))  # exact scaling
    assert abs(y.mean().item() - 1.0) < 0.01  # expectation preserved


def test_shape_kept_eval_and_p0_are_identity():
    x = torch.randn(4, 3, 5, 5)
    m = BernoulliDropout(0.5)
    assert m.train()(x).shape == x.shape
    assert torch.equal(m.eval()(x), x)
    assert torch.equal(BernoulliDropout(0.0).train()(x), x)


def test_masks_differ_between_calls_and_repeat_with_seed():
    m = BernoulliDropout(0.5).train()
    x = torch.ones(1000)
    torch.manual_seed(1)
    a, b = m(x), m(x)
    torch.manual_seed(1)
    assert not torch.equal(a, b)
    assert torch.equal(m(x), a)


def test_registry_gives_identity_only_for_a_zero_rate():
    cfg = OmegaConf.create({"name": "standard"})
    hidden = Place("hidden", "p", "dense", layer=True)
    assert isinstance(make_dropout(cfg, 0.0, hidden), torch.nn.Identity)
    assert isinstance(make_dropout(cfg, 0.3, hidden), BernoulliDropout)
    assert "p=0.3" in repr(make_dropout(cfg, 0.3, hidden))
    with pytest.raises(DropbenchError, match="dropout=none drops nothing"):
        make_dropout(OmegaConf.create({"name": "none"}), 0.3, hidden)
    with pytest.raises(DropbenchError, match="cannot drop the recurrent place"):
        make_dropout(cfg, 0.3, Place("recurrent", "p_recurrent", "recurrent"))
