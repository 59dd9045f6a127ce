"""Convolutional classifiers with dropout at configurable places: LeNet-5 style (`lenet`, for
MNIST) and the CIFAR-10 net of Srivastava et al. 2014 (`alexnet`). Both are one stack:

    input -> drop -> [conv -> (BN) -> act -> max-pool -> drop] x len(channels)
          -> flatten -> [linear -> (BN) -> act -> drop] x len(hidden) -> linear -> logits

Places for dropout (`convnet_places`, places.py), in the order `dropout.p` lists them: one per
conv block, then one per hidden fully connected layer. The input has its own rate,
`dropout.p_input`. `dropout.where=fc` keeps only the fully connected places (input and conv
blocks get rate 0).

Dropout comes after BatchNorm, the activation and the pooling, so BN normalises activations
dropout has not touched; dropout placed before BN makes the variance BN sees in training
differ from the one at evaluation (Li et al. 2019, "Understanding the disharmony between
dropout and batch normalization").
"""

import torch
from torch import nn

from dropbench.dropout import make_conv, make_dropout, make_linear, plan_rates
from dropbench.errors import DropbenchError
from dropbench.models.mlp import activation_module
from dropbench.models.places import convnet_places


@torch.no_grad()
def flat_size(features: nn.Module, input_shape) -> int:
    """Features per example after `features`, found by running one blank image through it."""
    was_training = features.training
    features.eval()
    n = features(torch.zeros(1, *input_shape)).numel()
    features.train(was_training)
    return n


class ConvNet(nn.Module):
    def __init__(self, input_shape, num_classes: int, model_cfg, dropout_cfg):
        super().__init__()
        m = model_cfg
        at_input, at_conv, at_fc = places = convnet_places(m)
        rates = plan_rates(m.name, places, dropout_cfg)
        layers = [make_dropout(dropout_cfg, rates["input"][0], at_input)]
        width = input_shape[0]
        for out, p in zip(m.channels, rates["conv"], strict=True):
            layers.append(make_conv(dropout_cfg, width, out, m.kernel_size, p, at_conv,
                                    padding=m.kernel_size // 2, bias=not m.batchnorm))
            if m.batchnorm:
                layers.append(nn.BatchNorm2d(out))
            # ceil_mode: 3x3/2 pooling takes 32 -> 16 -> 8 -> 4 as in cuda-convnet
            layers += [activation_module(m.activation),
                       nn.MaxPool2d(m.pool_size, m.pool_stride, ceil_mode=True),
                       make_dropout(dropout_cfg, p, at_conv)]
            width = out
        self.features = nn.Sequential(*layers)  # (B, C, H, W) -> (B, channels[-1], h, w)

        layers = [nn.Flatten()]
        width = flat_size(self.features, input_shape)
        for out, p in zip(m.hidden, rates["fc"], strict=True):
            layers.append(make_linear(dropout_cfg, width, out, p, at_fc))
            if m.batchnorm:
                layers.append(nn.BatchNorm1d(out))
            layers += [activation_module(m.activation), make_dropout(dropout_cfg, p, at_fc)]
            width = out
        layers.append(nn.Linear(width, num_classes))
        self.classifier = nn.Sequential(*layers)  # (B, C, h, w) -> (B, num_classes)

    def forward(self, x):  # (B, C, H, W) -> (B, num_classes)
        return self.classifier(self.features(x))


def check_images(model_cfg, data) -> None:
    if len(data.input_shape) != 3:
        raise DropbenchError(f"model={model_cfg.name} needs images (C, H, W) but the dataset "
                             f"gives examples of shape {tuple(data.input_shape)}")


def match_data_layout(model: nn.Module, data) -> nn.Module:
    """On CUDA the images are channels_last (NHWC); conv weights in the same layout spare
    cuDNN a transpose per layer."""
    if data.train.x.device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return model


def build_convnet(model_cfg, dropout_cfg, data) -> ConvNet:
    check_images(model_cfg, data)
    if not model_cfg.channels or any(c < 1 for c in model_cfg.channels):
        raise DropbenchError(f"model.channels={list(model_cfg.channels)} needs at least one "
                             f"conv layer, each with >= 1 filters")
    if any(h < 1 for h in model_cfg.hidden):
        raise DropbenchError(f"model.hidden={list(model_cfg.hidden)} needs widths >= 1")
    if model_cfg.kernel_size < 1 or model_cfg.pool_size < 1 or model_cfg.pool_stride < 1:
        raise DropbenchError("model.kernel_size, model.pool_size and model.pool_stride must "
                             "be >= 1")
    model = ConvNet(data.input_shape, data.num_classes, model_cfg, dropout_cfg)
    return match_data_layout(model, data)
