"""The Transformers as a user would write them in plain PyTorch, from torch's own
nn.TransformerEncoderLayer (pre-norm, GELU, batch first), trained by a hand-written loop: the
baselines the benchmark's `transformer` case compares dropbench's ViT and Transformer LM with.

The models match dropbench's (models/vit.py, models/transformer_lm.py) layer for layer and
parameter for parameter: patch (or token) embedding + learned positions + dropout, the encoder
layers with dropout on the attention probabilities and on each sub-layer's output, a final
LayerNorm and a linear head. The encoder layer's extra dropout inside its MLP is replaced by an
identity, as dropbench has none there.
"""

import torch
import torch.nn.functional as F
from torch import nn


def encoder(dim: int, depth: int, heads: int, mlp_ratio: float, p: float) -> nn.ModuleList:
    layers = nn.ModuleList()
    for _ in range(depth):
        layer = nn.TransformerEncoderLayer(dim, heads, round(dim * mlp_ratio), p,
                                           activation="gelu", batch_first=True, norm_first=True)
        layer.dropout = nn.Identity()  # the MLP's inner dropout: not among dropbench's places
        layers.append(layer)
    return layers


class PlainViT(nn.Module):
    def __init__(self, channels: int, side: int, classes: int, patch: int, dim: int,
                 depth: int, heads: int, mlp_ratio: float, p: float):
        super().__init__()
        self.embed = nn.Conv2d(channels, dim, patch, stride=patch)
        self.position = nn.Parameter(torch.randn(1, (side // patch) ** 2, dim) * 0.02)
        self.drop = nn.Dropout(p)
        self.layers = encoder(dim, depth, heads, mlp_ratio, p)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):  # (B, C, H, W) -> (B, classes)
        x = self.drop(self.embed(x).flatten(2).transpose(1, 2) + self.position)
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x).mean(1))


class PlainTransformerLM(nn.Module):
    def __init__(self, vocab: int, context: int, dim: int, depth: int, heads: int,
                 mlp_ratio: float, p: float):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.position = nn.Parameter(torch.randn(context, dim) * 0.02)
        self.drop = nn.Dropout(p)
        self.layers = encoder(dim, depth, heads, mlp_ratio, p)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab)
        self.head.weight = self.embed.weight  # tied

    def forward(self, tokens):  # (B, T) -> logits (B, T, V)
        steps = tokens.size(1)
        mask = nn.Transformer.generate_square_subsequent_mask(steps, device=tokens.device)
        x = self.drop(self.embed(tokens) + self.position[:steps])
        for layer in self.layers:
            x = layer(x, src_mask=mask, is_causal=True)
        return self.head(self.norm(x))


def classifier_epoch(model, x, y, batch_size: int, optimizer, clip: float) -> None:
    """x (N, C, H, W) and y (N,) in memory, shuffled batches, cross-entropy, clipping."""
    model.train()
    for idx in torch.randperm(len(y), device=x.device).split(batch_size):
        optimizer.zero_grad()
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()


def lm_epoch(model, stream, bptt: int, optimizer, clip: float) -> None:
    """stream (T_total, B) token ids; consecutive windows of bptt tokens, no state carried."""
    model.train()
    for start in range(0, stream.size(0) - 1, bptt):
        length = min(bptt, stream.size(0) - 1 - start)
        x = stream[start : start + length].t()  # (B, T)
        y = stream[start + 1 : start + 1 + length].t()
        optimizer.zero_grad()
        logits = model(x)
        F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
