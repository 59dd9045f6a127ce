"""The pre-norm Transformer block both Transformer families share (vit.py, transformer_lm.py):

    x -> x + branch(residual(attention(LayerNorm(x))))      attention probabilities: [p_attn]
      -> x + branch(residual(MLP(LayerNorm(x))))            MLP: Linear -> GELU -> Linear

`residual` is the dropout Vaswani et al. 2017 put on each sub-layer's output before it is added
to the sub-layer's input (`dropout.p`), `branch` drops that whole sub-layer output per example
(DropPath, `dropout.p_branch`). Pre-norm (LayerNorm before each sub-layer, one more after the
last block) rather than the paper's post-norm: it trains without a learning-rate warm-up
(Xiong et al. 2020), and dropbench's optimisers have none. Tensors are batch first, (B, N, D).

Attention runs through torch's scaled_dot_product_attention. Its `dropout_p` zeroes each
attention probability (after the softmax, before the weighted sum of the values) with
probability p and scales the rest by 1/(1-p): exactly what `standard` dropout does to the
probability matrix, so a dropout module that declares `fuses_with_attention` (the standard
scheme's) hands its rate to that kernel (the same distribution; not the same random bits). A
module of any other scheme that serves attention places is applied to the probabilities
computed explicitly. Dropout at the attention is on only while that module is in training mode,
so eval mode is deterministic and eval.mode=mc samples it.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from dropbench.dropout import make_dropout


def attend(q, k, v, causal: bool, drop: nn.Module) -> torch.Tensor:
    """Attention of queries q over keys k and values v, each (B, H, N, d_head) -> (B, H, N,
    d_head), the probabilities dropped by `drop` (an Identity when the rate is 0)."""
    p = float(getattr(drop, "p", 0.0)) if drop.training else 0.0
    if p == 0 or getattr(drop, "fuses_with_attention", False):
        return F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=causal)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (B, H, N, N)
    if causal:
        n = q.size(-2)
        future = torch.ones(n, n, dtype=torch.bool, device=q.device).triu(1)
        scores = scores.masked_fill(future, float("-inf"))
    return drop(scores.softmax(-1)) @ v


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, causal: bool, drop_attn: nn.Module):
        super().__init__()
        self.heads, self.causal = heads, causal
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.drop_attn = drop_attn

    def forward(self, x):  # (B, N, D) -> (B, N, D)
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = attend(q, k, v, self.causal, self.drop_attn)  # (B, H, N, d_head)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """One pre-norm block; `rates` (p_attn, p, p_branch) and `at` (the places by role) are this
    block's."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, causal: bool, dropout_cfg,
                 rates: tuple[float, float, float], at: dict):
        super().__init__()
        p_attn, p, p_branch = rates
        d = dropout_cfg
        hidden = max(1, round(dim * mlp_ratio))
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads, causal, make_dropout(d, p_attn, at["attention"]))
        self.drop1 = make_dropout(d, p, at["residual"])
        self.path1 = make_dropout(d, p_branch, at["branch"])
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.drop2 = make_dropout(d, p, at["residual"])
        self.path2 = make_dropout(d, p_branch, at["branch"])

    def forward(self, x):  # (B, N, D) -> (B, N, D)
        x = x + self.path1(self.drop1(self.attn(self.norm1(x))))
        return x + self.path2(self.drop2(self.mlp(self.norm2(x))))


def blocks(model_cfg, dropout_cfg, rate: dict, at: dict, causal: bool) -> nn.Sequential:
    """model.depth blocks, block i with the i-th rate of each per-block place."""
    per_block = zip(rate["attention"], rate["residual"], rate["branch"], strict=True)
    return nn.Sequential(*(Block(model_cfg.dim, model_cfg.heads, model_cfg.mlp_ratio, causal,
                                 dropout_cfg, rates, at) for rates in per_block))
