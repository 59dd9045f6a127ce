"""Spatial dropout and DropBlock: shapes, identities, what gets zeroed, drop fractions on
seeded tensors (tolerances stated next to each check), exact rescaling, the ramp."""

import pytest
import torch
import torch.nn.functional as F

from dropbench.dropout import hooks
from dropbench.dropout.dropblock import DropBlock, drop_block, dropblock_gamma
from dropbench.dropout.spatial import SpatialDropout, spatial_dropout
from dropbench.dropout.standard import bernoulli_dropout


def zeros_are_whole_squares(zero: torch.Tensor, b: int) -> bool:
    """True when every zero of the (H, W) map lies inside some all-zero b x b square."""
    z = zero.float()[None, None]  # (1, 1, H, W)
    full = -F.max_pool2d(-z, b, stride=1)  # 1 where the b x b window at (i, j) is all zero
    covered = F.max_pool2d(F.pad(full, (b - 1,) * 4), b, stride=1)  # union of those windows
    return bool((covered[0, 0] >= z[0, 0]).all())


# --- spatial dropout ---------------------------------------------------------------------
def test_spatial_zeroes_whole_channels_and_scales_the_rest():
    torch.manual_seed(0)
    p = 0.3
    out = spatial_dropout(torch.ones(64, 64, 5, 5), p)  # 4096 channels
    per_channel = out.flatten(2)  # (B, C, H*W)
    dropped = (per_channel == 0).all(-1)
    kept = (per_channel == 1 / (1 - p)).all(-1)
    assert bool((dropped | kept).all()), "each channel is either all zero or all scaled"
    # 4096 Bernoulli(0.3) draws: sd 0.0072; 0.03 is over 4 sd
    assert abs(dropped.float().mean().item() - p) < 0.03


def test_spatial_keeps_the_expectation():
    torch.manual_seed(1)
    x = torch.randn(256, 32, 4, 4).abs() + 1
    outs = torch.stack([spatial_dropout(x, 0.5) for _ in range(40)])
    # mean over 40 draws of 8192 channels each; relative error well under 2%
    assert outs.mean().item() == pytest.approx(x.mean().item(), rel=0.02)


def test_spatial_identity_in_eval_at_p0_and_on_fc_inputs_is_elementwise():
    x = torch.randn(8, 4, 6, 6)
    m = SpatialDropout(0.5).eval()
    assert torch.equal(m(x), x)
    assert torch.equal(SpatialDropout(0.0).train()(x), x)
    torch.manual_seed(2)
    dense = spatial_dropout(torch.ones(500, 40), 0.25)  # (B, D): each unit is a channel
    assert dense.shape == (500, 40)
    assert abs((dense == 0).float().mean().item() - 0.25) < 0.02  # 20000 draws, sd 0.003


def test_standard_dropout_on_conv_maps_drops_single_elements():
    torch.manual_seed(3)
    out = bernoulli_dropout(torch.ones(16, 8, 6, 6), 0.5)
    per_channel = (out == 0).flatten(2)
    partial = per_channel.any(-1) & ~per_channel.all(-1)
    assert partial.float().mean().item() > 0.99  # not whole channels: elements


# --- DropBlock ---------------------------------------------------------------------------
def test_gamma_matches_the_paper_formula():
    # Ghiasi et al. 2018 eq. 1 with keep_prob 0.9, block 7, feature map 14x14
    assert dropblock_gamma(0.1, 7, 14, 14) == pytest.approx(0.1 / 49 * 196 / 64)
    assert dropblock_gamma(0.3, 1, 9, 9) == pytest.approx(0.3)  # 1x1 blocks: plain dropout


def test_dropblock_zeroes_square_blocks():
    torch.manual_seed(4)
    out = drop_block(torch.ones(4, 8, 20, 20), 0.15, 5)
    assert out.shape == (4, 8, 20, 20)
    maps = (out == 0).flatten(0, 1)  # (32, 20, 20)
    assert maps.any(), "something was dropped"
    assert all(zeros_are_whole_squares(m, 5) for m in maps)
    # the check can fail: element-wise dropout leaves isolated zeros
    single = (bernoulli_dropout(torch.ones(1, 1, 20, 20), 0.15) == 0)[0, 0]
    assert not zeros_are_whole_squares(single, 5)


def test_dropblock_drop_fraction_matches_p():
    torch.manual_seed(5)
    p, b, size = 0.1, 3, 16
    out = drop_block(torch.ones(64, 32, size, size), p, b)
    frac = (out == 0).float().mean().item()
    # Exact expectation: cell i is covered by k_i valid seeds per axis, each drawn with prob.
    # gamma; overlapping blocks make it a little under p (0.0952 here).
    gamma = dropblock_gamma(p, b, size, size)
    k = torch.tensor([min(i, size - b) - max(0, i - b + 1) + 1 for i in range(size)])
    expected = (1 - (1 - gamma) ** (k[:, None] * k[None, :]).double()).mean().item()
    assert abs(frac - expected) < 0.005  # 2048 maps: sd of the mean about 0.0013
    assert abs(frac - p) < 0.01  # and within 10% of the asked-for rate


def test_dropblock_rescales_survivors_by_total_over_kept():
    torch.manual_seed(6)
    x = torch.rand(8, 4, 12, 12) + 0.5  # strictly positive: a zero means dropped
    out = drop_block(x, 0.2, 3)
    kept = out != 0
    scale = kept.numel() / kept.sum().item()
    assert torch.allclose(out[kept], x[kept] * scale, rtol=1e-6)


def test_dropblock_identities_and_block_clipping():
    x = torch.randn(2, 3, 5, 5)
    assert torch.equal(DropBlock(0.3, 7).eval()(x), x)
    assert torch.equal(DropBlock(0.0, 7).train()(x), x)
    torch.manual_seed(7)
    out = drop_block(torch.ones(64, 8, 4, 4), 0.3, 7)  # block clipped to the 4x4 map
    dropped_maps = (out == 0).flatten(2)
    assert bool((dropped_maps.all(-1) | ~dropped_maps.any(-1)).all())  # whole map or nothing
    dense = drop_block(torch.ones(400, 50), 0.2, 7)  # (B, D): 1x1 blocks
    assert dense.shape == (400, 50)
    assert abs((dense == 0).float().mean().item() - 0.2) < 0.02  # 20000 draws, sd 0.003


def test_dropblock_ramps_p_through_the_trainer_hook():
    model = torch.nn.Sequential(DropBlock(0.2, 3, ramp_epochs=4))
    rates = []
    for epoch in range(6):
        hooks.set_epoch(model, epoch, 6)
        rates.append(model[0].rate)
    assert rates == pytest.approx([0.05, 0.1, 0.15, 0.2, 0.2, 0.2])
    assert DropBlock(0.2, 3, ramp_epochs=0).rate == 0.2  # no ramp: full rate at once
