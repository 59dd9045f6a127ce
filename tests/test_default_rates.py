"""Per-place default dropout rates of the conv nets (conf/dropout_defaults/): what the default
model builds, and that one number or another scheme still overrides them."""

import pytest
from test_cnn_models import build, rates

from dropbench import DropbenchError

LENET = (1, 28, 28)


@pytest.mark.parametrize("overrides,shape,expected", [
    # input, conv1, conv2, fc1, fc2
    (["model=lenet"], LENET, [0.1, 0.25, 0.5, 0.5]),
    # input, conv1-3, fc1-2 (Srivastava et al. 2014's CIFAR-10 net)
    (["model=alexnet", "model.channels=[4,4,4]", "model.hidden=[8,8]"], (3, 32, 32),
     [0.1, 0.1, 0.2, 0.25, 0.5, 0.5]),
    (["model=lenet", "dropout.p=0.3"], LENET, [0.3] * 4),  # one number: every layer place
    (["model=lenet", "dropout.p_input=0.2"], LENET, [0.2, 0.1, 0.25, 0.5, 0.5]),
    (["model=lenet", "dropout=none"], LENET, []),
    (["model=mlp"], LENET, [0.5, 0.5]),  # the MLP keeps one rate for its hidden layers
])
def test_default_rates_per_model_and_their_overrides(compose, overrides, shape, expected):
    assert [p for p in rates(build(compose, overrides, shape)) if p > 0] == expected


def test_a_deeper_lenet_asks_for_matching_rates(compose):
    with pytest.raises(DropbenchError, match="give one number or a list of 5"):
        build(compose, ["model=lenet", "model.channels=[6,16,32]"], LENET)
    deeper = build(compose, ["model=lenet", "model.channels=[6,16,32]", "dropout.p=0.2"], LENET)
    assert rates(deeper) == [0.2] * 5
