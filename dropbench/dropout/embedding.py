"""Embedding dropout (Gal & Ghahramani 2016; Merity et al. 2017): drop whole words.

A dropped word's vector is zero at every position it appears in the batch, so the model cannot
lean on any one word type; kept rows are scaled by 1/(1-p). Shared by the recurrent schemes.
"""

import torch
import torch.nn.functional as F
from torch import nn


def embedding_dropout(weight: torch.Tensor, p: float) -> torch.Tensor:
    """(V, E) -> (V, E) with each row kept with probability 1-p and scaled by 1/(1-p)."""
    keep = weight.new_empty(weight.size(0), 1).bernoulli_(1 - p) / (1 - p)  # (V, 1)
    return weight * keep


class EmbeddingDropout(nn.Embedding):
    """An nn.Embedding (so `.weight` can be tied to the softmax) that drops words in training."""

    def __init__(self, num_embeddings: int, embedding_dim: int, p: float):
        super().__init__(num_embeddings, embedding_dim)
        self.p = p

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # (T, B) -> (T, B, E)
        if not self.training or self.p == 0:
            return super().forward(tokens)
        return F.embedding(tokens, embedding_dropout(self.weight, self.p))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p={self.p}"
