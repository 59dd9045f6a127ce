"""A small Vision Transformer (Dosovitskiy et al. 2021) for 8x8 to 32x32 images:

    image (B, C, H, W) -> patches: conv, kernel = stride = model.patch -> (B, N, D)
        [+ class token] + learned position embedding -> dropout [p_input]
        -> model.depth pre-norm blocks (transformer.py) -> LayerNorm -> pool -> linear head

`model.pool=mean` (the default) classifies the mean of the patch tokens; `cls` prepends a learned
class token and classifies its output, as Dosovitskiy et al. Mean pooling is the default: on
these small images it has one token less to attend over and nothing extra to learn, and Beyer,
Zhai & Kolesnikov 2022 ("Better plain ViT baselines") found global average pooling as good as
the class token. The places for dropout are `transformer_places` (places.py).
"""

import torch
from torch import nn

from dropbench.dropout import make_dropout, plan_rates
from dropbench.errors import DropbenchError
from dropbench.models.cnn import check_images, match_data_layout
from dropbench.models.places import transformer_places
from dropbench.models.transformer import blocks


class ViT(nn.Module):
    def __init__(self, input_shape, num_classes: int, model_cfg, dropout_cfg):
        super().__init__()
        channels, height, width = input_shape
        dim, patch = model_cfg.dim, model_cfg.patch
        at = {place.role: place for place in transformer_places(model_cfg)}
        rate = plan_rates(model_cfg.name, list(at.values()), dropout_cfg)
        self.embed = nn.Conv2d(channels, dim, patch, stride=patch)
        tokens = (height // patch) * (width // patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim)) if model_cfg.pool == "cls" else None
        self.position = nn.Parameter(torch.randn(1, tokens + (self.cls is not None), dim) * 0.02)
        self.drop_input = make_dropout(dropout_cfg, rate["input"][0], at["input"])
        self.blocks = blocks(model_cfg, dropout_cfg, rate, at, causal=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, images):  # (B, C, H, W) -> (B, num_classes)
        x = self.embed(images).flatten(2).transpose(1, 2)  # (B, N, D), patches row by row
        if self.cls is not None:
            x = torch.cat([self.cls.expand(x.size(0), -1, -1), x], dim=1)
        x = self.norm(self.blocks(self.drop_input(x + self.position)))
        return self.head(x[:, 0] if self.cls is not None else x.mean(1))


def build_vit(model_cfg, dropout_cfg, data) -> ViT:
    check_images(model_cfg, data)
    _, height, width = data.input_shape
    patch = model_cfg.patch
    if height % patch or width % patch:
        raise DropbenchError(f"model.patch={patch} does not divide the dataset's {height}x"
                             f"{width} images; pick a divisor of both sides (model.patch=4 "
                             f"fits 8x8, 28x28 and 32x32 images)")
    model = ViT(data.input_shape, data.num_classes, model_cfg, dropout_cfg)
    return match_data_layout(model, data)
