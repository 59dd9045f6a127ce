"""LeNet, the Srivastava et al. 2014 CIFAR-10 net and ResNet-18: shapes, where dropout goes
(dropout.where, per-place rates, BatchNorm order), and the experiment presets."""

import pytest
import torch
from torch import nn

from dropbench import DropbenchError
from dropbench.data import ClassificationData, Split
from dropbench.dropout.dropblock import DropBlock
from dropbench.dropout.spatial import SpatialDropout
from dropbench.dropout.standard import BernoulliDropout
from dropbench.models import build_model

TINY = ["model.channels=[4,4,4]", "model.hidden=[8,8]"]  # same code, quicker to build


def fake_data(shape):
    split = Split(torch.zeros(2, *shape), torch.zeros(2, dtype=torch.long))
    return ClassificationData(split, split, split, shape, 10)


def build(compose, overrides, shape=(3, 32, 32)):
    cfg = compose(overrides)
    return build_model(cfg.model, cfg.dropout, fake_data(shape))


def rates(model, kind=BernoulliDropout):
    return [m.p for m in model.modules() if isinstance(m, kind)]


@pytest.mark.parametrize("overrides,shape,n_params", [
    (["model=lenet"], (1, 28, 28), None),
    (["model=alexnet"], (3, 32, 32), None),
    (["model=alexnet"], (1, 28, 28), None),  # MNIST feeds the CNNs too
    (["model=lenet", "model.batchnorm=true"], (3, 32, 32), None),
    (["model=resnet"], (3, 32, 32), 11_173_962),  # the usual CIFAR ResNet-18 size
])
def test_shapes_through_each_model(compose, overrides, shape, n_params):
    torch.manual_seed(0)
    model = build(compose, overrides, shape)
    out = model(torch.randn(4, *shape))
    assert out.shape == (4, 10)
    out.sum().backward()  # gradients reach the first layer
    first = next(p for p in model.parameters() if p.dim() == 4)
    assert first.grad is not None and first.grad.abs().sum() > 0
    if n_params:
        assert sum(p.numel() for p in model.parameters()) == n_params


def test_srivastava_net_layout(compose):
    model = build(compose, ["model=alexnet"])
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    fcs = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [c.out_channels for c in convs] == [96, 128, 256]
    assert all(c.kernel_size == (5, 5) for c in convs)
    assert [f.out_features for f in fcs] == [2048, 2048, 10]
    assert fcs[0].in_features == 256 * 4 * 4  # 32 -> 16 -> 8 -> 4 by 3x3/2 pooling


def test_paper_rates_go_to_input_convs_and_fcs_in_order(compose):
    model = build(compose, ["model=alexnet", *TINY, "dropout.p_input=0.1",
                            "dropout.p=[0.25,0.25,0.5,0.5,0.5]"])
    assert rates(model) == [0.1, 0.25, 0.25, 0.5, 0.5, 0.5]
    fc_only = build(compose, ["model=alexnet", *TINY, "dropout.where=fc", "dropout.p=0.5"])
    assert rates(fc_only) == [0.5, 0.5]
    assert not any(isinstance(m, BernoulliDropout) for m in fc_only.features.modules())


def test_wrong_number_of_rates_names_the_places(compose):
    with pytest.raises(DropbenchError, match="2 rates but the model has 5 places"):
        build(compose, ["model=alexnet", *TINY, "dropout.p=[0.5,0.5]"])
    with pytest.raises(DropbenchError, match="needs images"):
        build(compose, ["model=lenet"], shape=(64,))


def test_batchnorm_comes_before_the_activation_and_dropout(compose):
    model = build(compose, ["model=lenet", "model.batchnorm=true", "dropout=spatial"],
                  shape=(1, 28, 28))
    kinds = [type(m).__name__ for m in model.features]
    assert kinds[:6] == ["Identity", "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d",
                         "SpatialDropout"]
    fc = [type(m).__name__ for m in model.classifier]
    assert fc[1:5] == ["Linear", "BatchNorm1d", "ReLU", "SpatialDropout"]


def test_conv_schemes_also_cover_the_fc_layers(compose):
    model = build(compose, ["model=alexnet", *TINY, "dropout=spatial", "dropout.p=0.2"])
    assert rates(model, SpatialDropout) == [0.2] * 5
    model = build(compose, ["model=alexnet", *TINY, "dropout=dropblock", "dropout.p=0.1"])
    assert [m.block_size for m in model.modules() if isinstance(m, DropBlock)] == [3] * 5


def test_resnet_puts_dropblock_in_the_last_two_stages(compose):
    model = build(compose, ["model=resnet", "dropout=dropblock", "dropout.p=[0.1,0.2,0.3]"])
    blocks = [m for m in model.features if type(m).__name__ == "BasicBlock"]
    assert len(blocks) == 8
    per_block = [rates(b, DropBlock) for b in blocks]
    # two blocks per stage, three places per block: both convs and the skip connection
    assert per_block == [[]] * 4 + [[0.1] * 3] * 2 + [[0.2] * 3] * 2
    assert rates(model.classifier, DropBlock) == [0.3]
    fc_only = build(compose, ["model=resnet", "dropout=dropblock", "dropout.where=fc",
                              "dropout.p=0.3"])
    assert rates(fc_only, DropBlock) == [0.3]


@pytest.mark.parametrize("name,error,n_rates", [
    ("srivastava_cifar10_none", 14.98, 0),
    ("srivastava_cifar10_fc", 14.32, 2),
    ("srivastava_cifar10_all", 12.61, 6),
    ("lenet_mnist", 0.95, 5),
])
def test_presets_compose_and_record_the_paper(compose, name, error, n_rates):
    tiny = [] if name == "lenet_mnist" else TINY
    cfg = compose([f"+experiment={name}", *tiny])
    row = cfg.paper.rows["none" if name == "lenet_mnist" else cfg.dropout.name]
    assert row.metric == "test_error" and row.value == error
    shape = (1, 28, 28) if name == "lenet_mnist" else (3, 32, 32)
    model = build_model(cfg.model, cfg.dropout, fake_data(shape))
    assert len([r for r in rates(model) if r > 0]) == n_rates
    if name == "srivastava_cifar10_all":
        assert rates(model) == [0.1, 0.25, 0.25, 0.5, 0.5, 0.5]  # retention 0.9 .. 0.5
    if name != "srivastava_cifar10_none":
        assert cfg.optim.max_norm == 4.0
