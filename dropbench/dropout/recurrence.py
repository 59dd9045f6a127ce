"""LSTM and GRU recurrences with a dropout mask on h_{t-1}, forward and backward by hand.

A mask on the recurrent state sits inside the time loop, so no fused nn.LSTM/nn.GRU kernel can
run it. Letting autograd record every step's dozen element-wise ops is slow (a graph node per
op per step, each with its own saved tensors), so each recurrence is one autograd Function:
the forward loop does one matmul and the gate arithmetic per step and keeps what the backward
needs; the backward loop walks back through time doing the same, and the weight gradient is a
single matmul over all steps at the end. The input projection (x W_ih^T, all steps at once)
stays outside, under ordinary autograd.

The per-step matmul dominates at the Zaremba medium size. On the CPU it runs through oneDNN with
the recurrent matrix packed once per window (`recurrent_product`), which is what the fused
nn.LSTM does too: 35 steps of (20, 650) x (650, 2600) took 80-110 ms that way against 200-230 ms
as plain `addmm` (which repacks the matrix every call) on the shared CPU of docs/rnn.md. The
loops themselves are plain Python: TorchScript-compiling them made no measurable difference
there, and torch.jit.script is deprecated.

Shapes: pre (T, B, G*H) input projections, w_hh (G*H, H), h0/c0 (B, H), mask (B, H) already
scaled by 1/(1-p) (all ones for no dropout). Gate order and equations are nn.LSTM's (i, f, g, o)
and nn.GRU's (r, z, n), so the layers are drop-in replacements for them.
"""

from collections.abc import Callable

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable


def _onednn_packing_works() -> bool:
    """Whether this torch build can pack a matrix for oneDNN and multiply with it correctly."""
    try:
        w, h = torch.randn(6, 4), torch.randn(3, 4)
        packed = torch.ops.mkldnn._reorder_linear_weight(w, 3)
        out = torch.ops.mkldnn._linear_pointwise(h, packed, None, "none", [], "")
        return torch.allclose(out, h @ w.t(), atol=1e-5)
    except (AttributeError, RuntimeError):  # no oneDNN, or these private ops changed
        return False


ONEDNN = torch.backends.mkldnn.is_available() and _onednn_packing_works()


def recurrent_product(w: Tensor, batch: int) -> Callable[[Tensor], Tensor]:
    """h (batch, in) -> h @ w.T for w (out, in), called once per time step: on the CPU with w
    packed for oneDNN once, elsewhere a plain matmul."""
    if ONEDNN and w.device.type == "cpu" and w.dtype == torch.float32:
        packed = torch.ops.mkldnn._reorder_linear_weight(w.detach(), batch)
        return lambda h: torch.ops.mkldnn._linear_pointwise(h, packed, None, "none", [], "")
    w_t = w.t()
    return lambda h: torch.mm(h, w_t)


def lstm_forward(pre: Tensor, w_hh: Tensor, h0: Tensor, c0: Tensor, mask: Tensor):
    """pre includes both biases. Returns out (T, B, H), acts (T, B, 4H) = (i, f, g, o) after
    their nonlinearities, cells (T+1, B, H) with c0 first, tanh of cells[1:], masked h_{t-1}."""
    steps, batch, hidden = pre.size(0), pre.size(1), h0.size(1)
    acts = torch.empty_like(pre)
    cells = pre.new_empty(steps + 1, batch, hidden)
    cells[0] = c0
    tanh_cells = pre.new_empty(steps, batch, hidden)
    masked_h = pre.new_empty(steps, batch, hidden)
    out = pre.new_empty(steps, batch, hidden)
    product = recurrent_product(w_hh, batch)
    h = h0
    for t in range(steps):
        hm = torch.mul(h, mask, out=masked_h[t])
        a = torch.add(pre[t], product(hm), out=acts[t])  # (B, 4H) gate pre-activations
        a[:, : 2 * hidden].sigmoid_()
        a[:, 2 * hidden : 3 * hidden].tanh_()
        a[:, 3 * hidden :].sigmoid_()
        c = torch.mul(a[:, hidden : 2 * hidden], cells[t], out=cells[t + 1])  # f * c_{t-1}
        c.addcmul_(a[:, :hidden], a[:, 2 * hidden : 3 * hidden])  # + i * g
        torch.tanh(c, out=tanh_cells[t])
        h = torch.mul(a[:, 3 * hidden :], tanh_cells[t], out=out[t])
    return out, acts, cells, tanh_cells, masked_h


def lstm_backward(d_out: Tensor, d_h: Tensor, d_c: Tensor, acts: Tensor, cells: Tensor,
                  tanh_cells: Tensor, w_hh: Tensor, mask: Tensor):
    """Gradients w.r.t. pre (T, B, 4H), h0 and c0, given those of out, h_T and c_T."""
    steps, batch, hidden = d_out.size(0), d_out.size(1), d_out.size(2)
    i, f, g, o = acts.chunk(4, 2)
    # Everything that does not depend on the incoming gradient, for all steps at once:
    # d pre_gate = (dc for i, f, g; dh for o) * local factor.
    local = torch.cat([g * i * (1 - i), cells[:-1] * f * (1 - f), i * (1 - g * g),
                       tanh_cells * o * (1 - o)], 2).view(steps, batch, 4, hidden)
    h_to_c = o * (1 - tanh_cells * tanh_cells)  # dc_t += dh_t * h_to_c
    d_pre = torch.empty_like(acts)
    d_pre4 = d_pre.view(steps, batch, 4, hidden)
    back = recurrent_product(w_hh.t().contiguous(), batch)  # d_pre (B, 4H) -> (B, H)
    for t in range(steps - 1, -1, -1):
        dh = d_out[t] + d_h
        d_c = torch.addcmul(d_c, dh, h_to_c[t])
        torch.mul(d_c.unsqueeze(1), local[t, :, :3], out=d_pre4[t, :, :3])
        torch.mul(dh, local[t, :, 3], out=d_pre4[t, :, 3])
        d_c = d_c * f[t]
        d_h = back(d_pre[t]).mul_(mask)
    return d_pre, d_h, d_c


def gru_forward(pre: Tensor, w_hh: Tensor, b_hh: Tensor, h0: Tensor, mask: Tensor):
    """pre includes b_ih only (b_hn must stay inside r * (...)). Returns out (T, B, H), the
    recurrent projections hh (T, B, 3H), gates rz (T, B, 2H), candidates n (T, B, H) and the
    masked h_{t-1}."""
    steps, batch, hidden = pre.size(0), pre.size(1), h0.size(1)
    hh = torch.empty_like(pre)
    rz = pre.new_empty(steps, batch, 2 * hidden)
    cand = pre.new_empty(steps, batch, hidden)
    masked_h = pre.new_empty(steps, batch, hidden)
    out = pre.new_empty(steps, batch, hidden)
    product = recurrent_product(w_hh, batch)
    h = h0
    for t in range(steps):
        hm = torch.mul(h, mask, out=masked_h[t])
        proj = torch.add(product(hm), b_hh, out=hh[t])  # (B, 3H)
        gates = torch.add(pre[t, :, : 2 * hidden], proj[:, : 2 * hidden], out=rz[t]).sigmoid_()
        n = torch.mul(gates[:, :hidden], proj[:, 2 * hidden :], out=cand[t])
        n.add_(pre[t, :, 2 * hidden :]).tanh_()
        h = torch.addcmul(n, gates[:, hidden:], h - n, out=out[t])  # (1 - z) n + z h
    return out, hh, rz, cand, masked_h


def gru_backward(d_out: Tensor, d_h: Tensor, out: Tensor, h0: Tensor, hh: Tensor, rz: Tensor,
                 cand: Tensor, w_hh: Tensor, mask: Tensor):
    """Gradients w.r.t. pre (T, B, 3H), hh (T, B, 3H) and h0, given those of out and h_T."""
    steps, hidden = d_out.size(0), d_out.size(2)
    r, z = rz.chunk(2, 2)
    h_prev = torch.cat([h0.unsqueeze(0), out[:-1]])
    to_n = (1 - z) * (1 - cand * cand)  # d n_pre = dh * to_n
    to_z = (h_prev - cand) * z * (1 - z)  # d z_pre = dh * to_z
    to_r = hh[:, :, 2 * hidden :] * r * (1 - r)  # d r_pre = d n_pre * to_r
    d_hh = torch.empty_like(hh)
    d_n = torch.empty_like(cand)
    back = recurrent_product(w_hh.t().contiguous(), d_out.size(1))  # (B, 3H) -> (B, H)
    for t in range(steps - 1, -1, -1):
        dh = d_out[t] + d_h
        dn = torch.mul(dh, to_n[t], out=d_n[t])
        torch.mul(dn, to_r[t], out=d_hh[t, :, :hidden])
        torch.mul(dh, to_z[t], out=d_hh[t, :, hidden : 2 * hidden])
        torch.mul(dn, r[t], out=d_hh[t, :, 2 * hidden :])
        d_h = back(d_hh[t]).mul_(mask).addcmul_(dh, z[t])
    d_pre = torch.cat([d_hh[:, :, : 2 * hidden], d_n], 2)
    return d_pre, d_hh, d_h


class LSTMRecurrence(torch.autograd.Function):
    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
    def forward(ctx, pre, w_hh, h0, c0, mask):
        out, acts, cells, tanh_cells, masked_h = lstm_forward(pre, w_hh, h0, c0, mask)
        ctx.save_for_backward(acts, cells, tanh_cells, masked_h, w_hh, mask)
        return out, cells[-1].clone()

    @staticmethod
    @once_differentiable
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, d_out, d_c_last):
        acts, cells, tanh_cells, masked_h, w_hh, mask = ctx.saved_tensors
        d_pre, d_h0, d_c0 = lstm_backward(
            d_out.contiguous(), torch.zeros_like(d_c_last), d_c_last.contiguous(), acts, cells,
            tanh_cells, w_hh, mask)
        d_w = d_pre.flatten(0, 1).t().mm(masked_h.flatten(0, 1))  # (4H, H), all steps at once
        return d_pre, d_w, d_h0, d_c0, None


class GRURecurrence(torch.autograd.Function):
    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
    def forward(ctx, pre, w_hh, b_hh, h0, mask):
        out, hh, rz, cand, masked_h = gru_forward(pre, w_hh, b_hh, h0, mask)
        ctx.save_for_backward(out, h0, hh, rz, cand, masked_h, w_hh, mask)
        return out

    @staticmethod
    @once_differentiable
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, d_out):
        out, h0, hh, rz, cand, masked_h, w_hh, mask = ctx.saved_tensors
        d_pre, d_hh, d_h0 = gru_backward(
            d_out.contiguous(), torch.zeros_like(h0), out, h0, hh, rz, cand, w_hh, mask)
        flat = d_hh.flatten(0, 1)
        d_w = flat.t().mm(masked_h.flatten(0, 1))  # (3H, H)
        return d_pre, d_w, flat.sum(0), d_h0, None
