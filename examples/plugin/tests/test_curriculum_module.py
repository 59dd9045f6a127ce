"""CurriculumDropout: which forward passes advance the schedule, and what a pass drops."""

import pytest
import torch

from dropbench_curriculum.layers import CurriculumDropout, curriculum_rate

P_MAX, GAMMA = 0.5, 1e-3


def at_step(step: int) -> CurriculumDropout:
    module = CurriculumDropout(P_MAX, GAMMA)
    module.step.fill_(step)
    return module


def test_a_training_pass_is_one_step_and_evaluation_passes_are_none():
    module = at_step(0)
    x = torch.ones(4, 8)
    module(x)  # training mode, gradients on: one step
    assert int(module.step) == 1
    with torch.no_grad():  # Monte-Carlo evaluation: training mode, no gradients
        module(x)
    assert int(module.step) == 1
    module.eval()
    assert torch.equal(module(x), x)  # the identity in eval mode
    assert int(module.step) == 1


def test_the_first_step_drops_nothing():
    x = torch.randn(16, 32)
    assert torch.equal(at_step(0)(x), x)


def test_a_late_step_drops_at_the_curriculum_rate_and_rescales_the_survivors():
    torch.manual_seed(0)
    step = 3000
    rate = curriculum_rate(P_MAX, GAMMA, step)
    out = at_step(step)(torch.ones(200, 1000))
    dropped = (out == 0).float().mean().item()
    # 200k Bernoulli draws: the standard error is about 0.0011, so 0.01 is ~9 of them
    assert dropped == pytest.approx(rate, abs=0.01)
    assert out[out != 0].unique().tolist() == pytest.approx([1 / (1 - rate)], rel=1e-6)


def test_the_step_travels_in_the_state_dict_so_a_resumed_run_continues_the_curriculum():
    trained = at_step(1234)
    resumed = CurriculumDropout(P_MAX, GAMMA)
    resumed.load_state_dict(trained.state_dict())
    assert int(resumed.step) == 1234
    assert resumed.rate() == curriculum_rate(P_MAX, GAMMA, 1234)


def test_the_logged_value_is_the_rate_in_use():
    module = at_step(700)
    assert module.logged_values() == {"p": curriculum_rate(P_MAX, GAMMA, 700)}
