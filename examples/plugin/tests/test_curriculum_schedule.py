"""The curriculum: p(t) = p_max (1 - exp(-gamma t)) over training steps t."""

import math

import pytest

from dropbench_curriculum.layers import curriculum_rate

SETTINGS = [(0.5, 1e-3), (0.3, 0.05), (0.8, 2e-4)]  # (p_max, gamma)


def paper_retain_probability(p_max: float, gamma: float, step: int) -> float:
    """Morerio et al.'s form, in retain probabilities: theta(t) = (1 - theta_max) exp(-gamma t)
    + theta_max, with theta_max = 1 - p_max."""
    theta_max = 1 - p_max
    return (1 - theta_max) * math.exp(-gamma * step) + theta_max


@pytest.mark.parametrize("p_max,gamma", SETTINGS)
def test_the_rate_is_one_minus_the_papers_retain_probability(p_max, gamma):
    for step in (0, 1, 10, 100, 1000, 5000, 100_000):
        expected = 1 - paper_retain_probability(p_max, gamma, step)
        assert curriculum_rate(p_max, gamma, step) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("p_max,gamma", SETTINGS)
def test_the_rate_starts_at_zero_and_rises_towards_p_max_without_reaching_it(p_max, gamma):
    # gamma t from 0 to 20 in tenths; beyond that exp(-gamma t) is lost against 1 in a float
    rates = [curriculum_rate(p_max, gamma, round(k / (10 * gamma))) for k in range(201)]
    assert rates[0] == 0.0
    assert all(a < b for a, b in zip(rates, rates[1:], strict=False))  # strictly rising
    assert all(r < p_max for r in rates)


@pytest.mark.parametrize("p_max,gamma", SETTINGS)
def test_half_of_p_max_after_ln2_over_gamma_steps_and_95_percent_after_3_over_gamma(p_max, gamma):
    # the yaml's comment on gamma (95 % of p after 3 / gamma steps) rests on the second
    assert curriculum_rate(p_max, gamma, math.log(2) / gamma) == pytest.approx(p_max / 2,
                                                                                rel=1e-9)
    assert curriculum_rate(p_max, gamma, 3 / gamma) == pytest.approx(0.95 * p_max, rel=1e-3)
