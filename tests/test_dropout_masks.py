"""The fast CPU keep-mask behind standard dropout: statistics on seeded draws, with tolerances;
the float factors made from the same draw without a bool mask are its values, bit for bit."""

import pytest
import torch

from dropbench.dropout.masks import keep_factor_rows, keep_factors, keep_mask

N = 1_000_000  # a kept fraction's standard error is <= 0.0005 here, so 0.003 is ~6 sigma


@pytest.mark.parametrize("keep", [0.05, 0.5, 0.8, 0.9])
def test_kept_fraction_overall_and_in_both_halves_of_each_draw(keep):
    torch.manual_seed(0)
    mask = keep_mask((N,), keep)
    assert mask.dtype == torch.bool and mask.shape == (N,)
    assert abs(mask.float().mean().item() - keep) < 0.003
    # even and odd elements come from the two 32-bit halves of one 64-bit draw
    for half in (mask[0::2], mask[1::2]):
        assert abs(half.float().mean().item() - keep) < 0.0045  # 6 sigma of N/2 draws


@pytest.mark.parametrize("keep", [0.3, 0.5, 0.95])
def test_15_bit_draw_keeps_the_fraction_in_every_quarter_of_a_draw(keep):
    """bits=15: four elements per 64-bit draw; each quarter keeps `keep` within 6 sigma of N/4
    draws (sd <= 0.001), and neighbours in one draw are independent (E[m_i m_j] = keep^2)."""
    torch.manual_seed(2)
    mask = keep_mask((N,), keep, bits=15)
    assert mask.dtype == torch.bool and mask.shape == (N,)
    assert abs(mask.float().mean().item() - keep) < 0.003
    for quarter in range(4):
        assert abs(mask[quarter::4].float().mean().item() - keep) < 0.006
    m = mask.float()
    assert abs((m[0::4] * m[1::4]).mean().item() - keep**2) < 0.006
    assert keep_mask((3, 5), keep, bits=15).shape == (3, 5)


def test_neighbours_are_independent():
    torch.manual_seed(1)
    mask = keep_mask((N,), 0.5).float()
    both = (mask[0::2] * mask[1::2]).mean().item()  # the two halves of the same draw
    across = (mask[1:-1:2] * mask[2::2]).mean().item()  # halves of consecutive draws
    assert abs(both - 0.25) < 0.004 and abs(across - 0.25) < 0.004


def test_shapes_odd_sizes_and_seeding():
    torch.manual_seed(2)
    a = keep_mask((3, 5, 7), 0.3)  # 105 elements: an odd count uses half of the last draw
    b = keep_mask((3, 5, 7), 0.3)
    torch.manual_seed(2)
    assert a.shape == (3, 5, 7)
    assert not torch.equal(a, b)
    assert torch.equal(keep_mask((3, 5, 7), 0.3), a)
    assert keep_mask((0, 4), 0.5).shape == (0, 4)


def test_extreme_keep_probabilities():
    torch.manual_seed(3)
    assert not keep_mask((10_000,), 1e-12).any()
    assert keep_mask((10_000,), 1 - 1e-12).all()


@pytest.mark.parametrize("shape", [(3, 5, 7), (4, 6), (1,), (0, 4)])  # odd counts: half a draw
@pytest.mark.parametrize("keep,factor", [(0.995, 1 / 0.995), (0.5, 2.0), (0.1, 1.0), (1e-12, 3.0),
                                         (1 - 1e-12, 1.0), (0.7, 1 / 0.7)])
def test_keep_factors_are_the_masks_factors_bit_for_bit(shape, keep, factor):
    expected = keep_mask(shape, keep, generator=torch.Generator().manual_seed(5))
    expected = expected.to(torch.float32).mul_(factor)
    ours = keep_factors(shape, keep, factor, torch.float32, generator=torch.Generator()
                        .manual_seed(5))
    assert ours.dtype == torch.float32 and ours.shape == shape
    assert torch.equal(ours.view(torch.int32), expected.view(torch.int32))
    # float64 takes the bool mask's way: the same draw, the same values
    wide = keep_factors(shape, keep, factor, torch.float64, generator=torch.Generator()
                        .manual_seed(5))
    mask = keep_mask(shape, keep, generator=torch.Generator().manual_seed(5))
    assert torch.equal(wide, mask.double().mul_(factor))


def test_factor_rows_are_each_generators_own_factors():
    keeps, factors = [0.9, 0.5, 0.995], [1 / 0.9, 2.0, 1.0]
    rows = keep_factor_rows((5, 7), keeps, factors, torch.float32,
                            [torch.Generator().manual_seed(s) for s in range(3)])
    for s, (keep, factor) in enumerate(zip(keeps, factors, strict=True)):
        alone = keep_factors((5, 7), keep, factor, torch.float32,
                             generator=torch.Generator().manual_seed(s))
        assert torch.equal(rows[s].view(torch.int32), alone.view(torch.int32))
    assert not torch.equal(rows[0], rows[1])
