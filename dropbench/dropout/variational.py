"""Variational RNN dropout (Gal & Ghahramani 2016): every mask is drawn once per sequence, for
each example separately, and reused at every time step.

  words:      each word type dropped per sequence (`dropout.p_embed`, SequenceEmbeddingDropout)
  inputs:     the embedding output (`p_input`), each layer's input (`p`), the last output
              (`p_output`): LockedDropout, a (1, B, H) mask broadcast over time
  recurrent:  h_{t-1} inside the loop (`p_recurrent`): one (B, H) mask, tied across the gates,
              the same at every step: h_t = cell(x_t, h_{t-1} * m)

"Sequence" is one BPTT window (one forward call): masks are drawn afresh for each window, as in
Gal's released language-model code, while the hidden state carries over. Gal's LSTM code draws a
separate recurrent mask per gate ("untied"); this one ties them (one mask, one matmul), the
variant his code offers as the faster one. In eval mode (and at p_recurrent = 0) the layer is the
plain fused nn.LSTM / nn.GRU it subclasses; in training the loop runs by hand (recurrence.py).
"""

import torch
import torch.nn.functional as F
from torch import nn

from dropbench.dropout.base import Factories
from dropbench.dropout.embedding import SequenceEmbeddingDropout
from dropbench.dropout.locked import LockedDropout
from dropbench.dropout.masks import keep_factors
from dropbench.dropout.recurrence import GRURecurrence, LSTMRecurrence


def unit_mask(batch: int, hidden: int, p: float, like: torch.Tensor) -> torch.Tensor:
    """(B, H): each unit of each example kept with probability 1-p and scaled by 1/(1-p)."""
    return keep_factors((batch, hidden), 1 - p, 1 / (1 - p), torch.float32, like.device)


class VariationalRecurrence:
    """Shared by both cells: the fused kernel in eval mode, the masked loop in training."""

    drops, mask_examples, mask_steps = "units of h_{t-1}", "per example", "per sequence"

    def __init__(self, input_size: int, hidden_size: int, p: float):
        super().__init__(input_size, hidden_size)
        self.p = p

    def forward(self, x: torch.Tensor, state=None):  # (T, B, I) -> (T, B, H), state
        if not self.training or self.p == 0:
            return super().forward(x, state)
        return self.recurrence(x, state, unit_mask(x.size(1), self.hidden_size, self.p, x))

    def zero_state(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(1, x.size(1), self.hidden_size, dtype=torch.float32)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p_recurrent={self.p} (per example, per sequence)"


class VariationalLSTM(VariationalRecurrence, nn.LSTM):
    """A one-layer nn.LSTM whose h_{t-1} is dropped with one mask per sequence in training."""

    def recurrence(self, x: torch.Tensor, state, mask: torch.Tensor):
        """The hand-written loop with h_{t-1} multiplied by `mask` (B, H) at every step."""
        h0, c0 = state if state is not None else (self.zero_state(x), self.zero_state(x))
        pre = F.linear(x, self.weight_ih_l0, self.bias_ih_l0 + self.bias_hh_l0)  # (T, B, 4H)
        out, c = LSTMRecurrence.apply(pre, self.weight_hh_l0, h0[0], c0[0], mask)
        return out, (out[-1:], c.unsqueeze(0))


class VariationalGRU(VariationalRecurrence, nn.GRU):
    """A one-layer nn.GRU whose h_{t-1} is dropped with one mask per sequence in training: the
    mask falls on the recurrent projections of all three gates, while the interpolation
    z * h_{t-1} keeps the undropped state."""

    def recurrence(self, x: torch.Tensor, state, mask: torch.Tensor):
        h0 = state if state is not None else self.zero_state(x)
        pre = F.linear(x, self.weight_ih_l0, self.bias_ih_l0)  # (T, B, 3H)
        out = GRURecurrence.apply(pre, self.weight_hh_l0, self.bias_hh_l0, h0[0], mask)
        return out, out[-1:]


VARIATIONAL_CELLS = {"lstm": VariationalLSTM, "gru": VariationalGRU}


FACTORIES = {"variational": Factories(
    activation=lambda p, cfg: LockedDropout(p),
    recurrent=lambda cell, i, h, p, cfg: VARIATIONAL_CELLS[cell](i, h, p),
    embedding=lambda n, d, p, cfg: SequenceEmbeddingDropout(n, d, p),
)}
