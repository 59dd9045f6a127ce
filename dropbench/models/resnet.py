"""ResNet-18 for 32x32 images (He et al. 2016, with the 3x3 stem used for CIFAR) with dropout
where Ghiasi et al. 2018 put DropBlock: in every residual block of the last two stages, after
both convolutions and on the skip connection; plus dropout before the classifier.

Places for dropout (`resnet_places`, places.py), in the order `dropout.p` lists them: the
second-to-last stage, the last stage, the classifier (its input units, or its weights for
DropConnect). `dropout.p_input` drops the input image. `dropout.where=fc` keeps only the
classifier place. BatchNorm is always on; dropout follows it.

`dropout.p_branch` rates the residual branch of every block, all stages, in depth order: a
scheme that serves the `branch` kind (droppath: stochastic depth) drops the branch f(x) of
x + f(x) there, before the sum, so a dropped block passes its input on through the skip path.
"""

import torch.nn.functional as F
from torch import nn

from dropbench.dropout import make_conv, make_dropout, make_linear, plan_rates
from dropbench.errors import DropbenchError
from dropbench.models.cnn import check_images, match_data_layout
from dropbench.models.places import (
    RESNET_CLASSIFIER,
    RESNET_INPUT,
    RESNET_STAGES,
    resnet_branches,
    resnet_places_of,
)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a skip connection; `p` is this stage's dropout rate, `p_branch`
    the rate at which the branch is dropped whole."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, p: float, dropout_cfg,
                 p_branch: float, branch_place):
        super().__init__()
        at = RESNET_STAGES
        self.conv1 = make_conv(dropout_cfg, in_ch, out_ch, 3, p, at, stride=stride, padding=1,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.drop1 = make_dropout(dropout_cfg, p, at)
        self.conv2 = make_conv(dropout_cfg, out_ch, out_ch, 3, p, at, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.drop2 = make_dropout(dropout_cfg, p, at)
        shortcut = []
        if stride != 1 or in_ch != out_ch:  # projection to the new shape
            shortcut = [make_conv(dropout_cfg, in_ch, out_ch, 1, p, at, stride=stride,
                                  bias=False), nn.BatchNorm2d(out_ch)]
        self.shortcut = nn.Sequential(*shortcut, make_dropout(dropout_cfg, p, at))
        self.drop_branch = make_dropout(dropout_cfg, p_branch, branch_place)

    def forward(self, x):  # (B, in_ch, H, W) -> (B, out_ch, H / stride, W / stride)
        out = self.drop1(F.relu(self.bn1(self.conv1(x))))
        out = self.drop_branch(self.drop2(self.bn2(self.conv2(out))))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, input_shape, num_classes: int, channels, blocks, dropout_cfg):
        super().__init__()
        places = resnet_places_of(blocks)
        rates = plan_rates("resnet", places, dropout_cfg)
        branches = resnet_branches(blocks)
        branch_rates = iter(rates["branch"])  # one per block, in depth order
        # rate per stage: 0 except the last two
        stage_rates = [0.0] * (len(channels) - 2) + rates["stage"]
        width = channels[0]
        layers = [make_dropout(dropout_cfg, rates["input"][0], RESNET_INPUT),
                  nn.Conv2d(input_shape[0], width, 3, padding=1, bias=False),
                  nn.BatchNorm2d(width), nn.ReLU()]
        for i, (out, n_blocks, p) in enumerate(zip(channels, blocks, stage_rates, strict=True)):
            for j in range(n_blocks):
                stride = 2 if i > 0 and j == 0 else 1  # halve the map entering each stage
                layers.append(BasicBlock(width, out, stride, p, dropout_cfg,
                                         next(branch_rates), branches))
                width = out
        self.features = nn.Sequential(*layers)  # (B, C, H, W) -> (B, channels[-1], h, w)
        (p_fc,) = rates["classifier"]
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),  # (B, channels[-1])
            make_dropout(dropout_cfg, p_fc, RESNET_CLASSIFIER),
            make_linear(dropout_cfg, width, num_classes, p_fc, RESNET_CLASSIFIER),
        )

    def forward(self, x):  # (B, C, H, W) -> (B, num_classes)
        return self.classifier(self.features(x))


def build_resnet(model_cfg, dropout_cfg, data) -> ResNet:
    check_images(model_cfg, data)
    channels, blocks = list(model_cfg.channels), list(model_cfg.blocks)
    if len(channels) < 2 or len(channels) != len(blocks) or min(channels + blocks) < 1:
        raise DropbenchError(
            f"model.channels={channels} and model.blocks={blocks} need one width and one "
            f"block count (each >= 1) per stage, and at least two stages"
        )
    if not model_cfg.batchnorm:
        raise DropbenchError("model=resnet always uses BatchNorm; drop model.batchnorm=false")
    model = ResNet(data.input_shape, data.num_classes, channels, blocks, dropout_cfg)
    return match_data_layout(model, data)
