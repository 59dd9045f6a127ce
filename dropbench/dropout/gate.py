"""Recurrent dropout without memory loss (Semeniuta et al. 2016): dropout on the candidate
update inside the cell, never on the memory itself.

  LSTM: c_t = f * c_{t-1} + i * d(g)          GRU: h_t = (1 - z) * d(n) + z * h_{t-1}

so a dropped unit adds nothing new this step but keeps what it already stored. Each example
gets its own mask. `dropout.mask` says how often it is drawn, the two variants of the paper:
`per_sequence` (default) draws one mask per forward call (one BPTT window) and uses it at every
step; `per_step` draws a fresh mask at every time step. The mask sits between the gates inside
the step, so no fused nn.LSTM/nn.GRU kernel can run it: the layer loops over time in Python,
with the input projection of all steps done as one matmul up front, and the step function
optionally compiled with torch.compile (dropout.compile). Its cost is measured by
scripts/bench_rnn.py (docs/rnn.md). Weights use nn.LSTM/nn.GRU's names and gate order, so
state dicts are interchangeable with the fused layers.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from dropbench.dropout.base import Factories
from dropbench.dropout.embedding import EmbeddingDropout
from dropbench.dropout.standard import BernoulliDropout


def lstm_step(pre: torch.Tensor, h, c, w_hh, b_hh, mask):
    """One LSTM step. pre: (B, 4H) input projection; h, c: (B, H); mask: (B, H) or None."""
    i, f, g, o = (pre + F.linear(h, w_hh, b_hh)).chunk(4, 1)  # nn.LSTM's gate order
    g = torch.tanh(g)
    if mask is not None:
        g = g * mask
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * g
    return torch.sigmoid(o) * torch.tanh(c), c


def gru_step(pre: torch.Tensor, h, w_hh, b_hh, mask):
    """One GRU step. pre: (B, 3H) input projection; h: (B, H); mask: (B, H) or None."""
    rx, zx, nx = pre.chunk(3, 1)  # nn.GRU's gate order
    rh, zh, nh = F.linear(h, w_hh, b_hh).chunk(3, 1)
    r, z = torch.sigmoid(rx + rh), torch.sigmoid(zx + zh)
    n = torch.tanh(nx + r * nh)
    if mask is not None:
        n = n * mask
    return (1 - z) * n + z * h


_COMPILED: dict = {}


def step_function(cell: str, compiled: bool):
    step = lstm_step if cell == "lstm" else gru_step
    if not compiled:
        return step
    if cell not in _COMPILED:  # one compiled function per cell type, shared by all layers
        _COMPILED[cell] = torch.compile(step, dynamic=False)
    return _COMPILED[cell]


class GateDropoutRNN(nn.Module):
    drops, mask_examples = "cell updates", "per example"

    def __init__(self, cell: str, input_size: int, hidden_size: int, p: float,
                 compiled: bool = False, mask: str = "per_sequence"):
        super().__init__()
        gates = 4 if cell == "lstm" else 3
        self.cell, self.hidden_size, self.p, self.compiled = cell, hidden_size, p, compiled
        self.mask = mask
        self.weight_ih_l0 = nn.Parameter(torch.empty(gates * hidden_size, input_size))
        self.weight_hh_l0 = nn.Parameter(torch.empty(gates * hidden_size, hidden_size))
        self.bias_ih_l0 = nn.Parameter(torch.empty(gates * hidden_size))
        self.bias_hh_l0 = nn.Parameter(torch.empty(gates * hidden_size))
        bound = 1 / math.sqrt(hidden_size)  # nn.LSTM's default init
        for w in self.parameters():
            nn.init.uniform_(w, -bound, bound)

    @property
    def mask_steps(self) -> str:
        return self.mask.replace("_", " ")

    def step_masks(self, x: torch.Tensor) -> list:
        """One (B, H) mask (kept units scaled 1/(1-p)) or None per time step of x (T, B, I)."""
        steps = x.size(0)
        if not self.training or self.p == 0:
            return [None] * steps
        draws = steps if self.mask == "per_step" else 1
        masks = x.new_empty(draws, x.size(1), self.hidden_size).bernoulli_(1 - self.p)
        masks /= 1 - self.p
        return list(masks) if draws == steps else [masks[0]] * steps

    def forward(self, x: torch.Tensor, state=None):  # (T, B, I) -> (T, B, H), state
        batch = x.size(1)
        if state is None:
            zeros = x.new_zeros(1, batch, self.hidden_size)
            state = (zeros, zeros) if self.cell == "lstm" else zeros
        masks = self.step_masks(x)
        pre = F.linear(x, self.weight_ih_l0, self.bias_ih_l0)  # (T, B, G*H), all steps at once
        step = step_function(self.cell, self.compiled)
        outputs = []
        if self.cell == "lstm":
            h, c = state[0][0], state[1][0]  # (B, H)
            for t in range(x.size(0)):
                h, c = step(pre[t], h, c, self.weight_hh_l0, self.bias_hh_l0, masks[t])
                outputs.append(h)
            return torch.stack(outputs), (h.unsqueeze(0), c.unsqueeze(0))
        h = state[0]
        for t in range(x.size(0)):
            h = step(pre[t], h, self.weight_hh_l0, self.bias_hh_l0, masks[t])
            outputs.append(h)
        return torch.stack(outputs), h.unsqueeze(0)

    def extra_repr(self) -> str:
        return (f"{self.cell}, {self.weight_ih_l0.size(1)}, {self.hidden_size}, "
                f"p_recurrent={self.p}, mask={self.mask}, compiled={self.compiled}")


FACTORIES = {"gate": Factories(
    activation=lambda p, cfg: BernoulliDropout(p),
    recurrent=lambda cell, i, h, p, cfg: GateDropoutRNN(cell, i, h, p, cfg.compile, cfg.mask),
    embedding=lambda n, d, p, cfg: EmbeddingDropout(n, d, p),
)}
