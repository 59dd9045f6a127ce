"""Embedding dropout (Gal & Ghahramani 2016; Merity et al. 2017): drop whole words.

EmbeddingDropout (Merity et al.): one mask over the vocabulary per forward call, so a dropped
word is zero at every position it appears in the whole batch. SequenceEmbeddingDropout (Gal &
Ghahramani): one mask per example, so each sequence drops its own words. Kept rows are scaled
by 1/(1-p); either way the model cannot lean on any one word type.
"""

import torch
import torch.nn.functional as F
from torch import nn

from dropbench.dropout.masks import keep_mask


def embedding_dropout(weight: torch.Tensor, p: float) -> torch.Tensor:
    """(V, E) -> (V, E) with each row kept with probability 1-p and scaled by 1/(1-p)."""
    keep = weight.new_empty(weight.size(0), 1).bernoulli_(1 - p) / (1 - p)  # (V, 1)
    return weight * keep


class EmbeddingDropout(nn.Embedding):
    """An nn.Embedding (so `.weight` can be tied to the softmax) that drops words in training."""

    drops = "words"
    mask_examples, mask_steps = "per batch", "per sequence"  # one word mask per forward call

    def __init__(self, num_embeddings: int, embedding_dim: int, p: float):
        super().__init__(num_embeddings, embedding_dim)
        self.p = p

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # (T, B) -> (T, B, E)
        if not self.training or self.p == 0:
            return super().forward(tokens)
        return F.embedding(tokens, embedding_dropout(self.weight, self.p))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p={self.p}"


class SequenceEmbeddingDropout(nn.Embedding):
    """Word dropout per sequence (Gal & Ghahramani 2016): each example drops its own word types,
    so a dropped word is zero wherever it occurs in that sequence (one BPTT window) and nowhere
    else; kept words are scaled by 1/(1-p)."""

    drops, mask_examples, mask_steps = "words", "per example", "per sequence"

    def __init__(self, num_embeddings: int, embedding_dim: int, p: float):
        super().__init__(num_embeddings, embedding_dim)
        self.p = p

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # (T, B) -> (T, B, E)
        out = super().forward(tokens)
        if not self.training or self.p == 0:
            return out
        batch = tokens.size(1)
        keep = keep_mask((self.num_embeddings, batch), 1 - self.p, tokens.device)  # (V, B)
        columns = torch.arange(batch, device=tokens.device)
        scale = keep[tokens, columns].to(out.dtype).mul_(1 / (1 - self.p))  # (T, B)
        return out * scale.unsqueeze(-1)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p={self.p} (per example, per sequence)"
