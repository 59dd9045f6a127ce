"""The matrix-multiply limit: the products one training step cannot avoid, timed alone on
random operands of the real shapes, in the layouts autograd uses (so the BLAS takes the same
paths). Everything else a step does (dropout masks, activations, the loss, the optimiser,
Python) is overhead on top of this floor.

Per linear layer y = x W^T (x: (N, in), W: (out, in)):
  forward  x @ W^T            backward  dW = g^T @ x,  dx = g @ W
The first layer's dx is skipped: autograd never computes a gradient for the input batch.
"""

import torch


def _rand(*shape, device, dtype):
    return torch.randn(*shape, device=device, dtype=dtype)


def mlp_step_products(sizes: list[int], batch: int, device, dtype=torch.float32):
    """sizes [784, 1024, 1024, 10] -> a function running one step's 3 + 3 + 2 products."""
    pairs = list(zip(sizes[:-1], sizes[1:], strict=True))  # (in, out) per layer
    weights = [_rand(o, i, device=device, dtype=dtype) for i, o in pairs]
    inputs = [_rand(batch, i, device=device, dtype=dtype) for i in sizes[:-1]]  # (B, in)
    grads = [_rand(batch, o, device=device, dtype=dtype) for o in sizes[1:]]  # (B, out)

    def step():
        for x, w in zip(inputs, weights, strict=True):
            torch.mm(x, w.t())  # forward (B, out)
        for i, (x, w, g) in enumerate(zip(inputs, weights, grads, strict=True)):
            torch.mm(g.t(), x)  # dW (out, in)
            if i > 0:
                torch.mm(g, w)  # dx (B, in)

    return step


def lstm_lm_window_products(vocab: int, hidden: int, layers: int, bptt: int, batch: int,
                            device, dtype=torch.float32):
    """One truncated-BPTT window of an LSTM LM (embedding size = hidden): per layer the
    input projection over all T*B positions at once and T sequential recurrent products
    (B, H) @ (H, 4H); then the decoder (T*B, H) @ (H, V). Backward: both products of every
    batched projection, the recurrent weight gradient as one product over all steps, and T
    sequential (B, 4H) @ (4H, H) products for the state gradient. The embedding is a lookup."""
    n = bptt * batch
    w_ih = [_rand(4 * hidden, hidden, device=device, dtype=dtype) for _ in range(layers)]
    w_hh = [_rand(4 * hidden, hidden, device=device, dtype=dtype) for _ in range(layers)]
    w_dec = _rand(vocab, hidden, device=device, dtype=dtype)
    x = _rand(n, hidden, device=device, dtype=dtype)  # (T*B, H) any layer's input
    h = _rand(batch, hidden, device=device, dtype=dtype)  # (B, H) one step's state
    g_gates = _rand(n, 4 * hidden, device=device, dtype=dtype)  # (T*B, 4H)
    g_step = _rand(batch, 4 * hidden, device=device, dtype=dtype)  # (B, 4H)
    g_logits = _rand(n, vocab, device=device, dtype=dtype)  # (T*B, V)

    def window():
        for layer in range(layers):
            torch.mm(x, w_ih[layer].t())  # (T*B, 4H)
            for _ in range(bptt):
                torch.mm(h, w_hh[layer].t())  # (B, 4H)
        torch.mm(x, w_dec.t())  # logits (T*B, V)
        torch.mm(g_logits.t(), x)  # dW_dec (V, H)
        torch.mm(g_logits, w_dec)  # dx (T*B, H)
        for layer in range(layers):
            torch.mm(g_gates.t(), x)  # dW_ih (4H, H)
            torch.mm(g_gates, w_ih[layer])  # dx (T*B, H), to the layer below / embedding
            torch.mm(g_gates.t(), x)  # dW_hh over all steps (4H, H)
            for _ in range(bptt):
                torch.mm(g_step, w_hh[layer])  # dh (B, H)

    return window
