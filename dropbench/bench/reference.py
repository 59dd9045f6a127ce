"""The loops a user would write without dropbench, written the way pytorch/examples writes them
(our own code, same structure): the baselines the benchmark compares dropbench against.

- `mnist_reference_epoch`: examples/mnist style: torchvision's MNIST dataset (one PIL image
  per sample) + ToTensor/Normalize transforms + DataLoader, zero_grad/backward/step, the loss
  read back every 10 batches for the log line.
- `naive_tensor_epoch`: the same model on tensors already in memory, sliced by a permutation:
  the "obvious" fast loop.
- `WordLanguageModel` + `word_lm_epoch`: examples/word_language_model style: one multi-layer
  nn.LSTM with its own inter-layer dropout, nn.Dropout on embeddings and outputs, log-softmax
  + NLL, gradient clipping and a hand-written SGD update.
- `CellLoopLM`: variational dropout done by hand: nn.LSTMCell stepped in a Python loop, with
  masks drawn once per window and applied at every time step, on the inputs and on the
  recurrent state (Gal & Ghahramani 2016).
"""

import torch
import torch.nn.functional as F
from torch import nn


# --- MNIST MLP ---------------------------------------------------------------------------------
def reference_mlp(hidden=(1024, 1024), p_input=0.2, p=0.5, in_features=784, classes=10):
    layers = [nn.Flatten(), nn.Dropout(p_input)]
    width = in_features
    for out in hidden:
        layers += [nn.Linear(width, out), nn.ReLU(), nn.Dropout(p)]
        width = out
    layers += [nn.Linear(width, classes), nn.LogSoftmax(dim=1)]
    return nn.Sequential(*layers)


def mnist_loader(root: str, batch_size: int, device: torch.device, limit: int | None = None):
    """torchvision.datasets.MNIST from IDX files under root/MNIST/raw, as examples/mnist loads
    it (workers and pinned memory on CUDA only, as there)."""
    from torchvision import datasets, transforms

    transform = transforms.Compose([transforms.ToTensor(),
                                    transforms.Normalize((0.1307,), (0.3081,))])
    dataset = datasets.MNIST(root, train=True, download=False, transform=transform)
    if limit is not None:
        dataset = torch.utils.data.Subset(dataset, range(limit))
    extra = {"num_workers": 1, "pin_memory": True} if device.type == "cuda" else {}
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, **extra)


def mnist_reference_epoch(model, loader, optimizer, device, autocast) -> None:
    model.train()
    for batch_idx, (data, target) in enumerate(loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        with autocast():
            loss = F.nll_loss(model(data), target)
        loss.backward()
        optimizer.step()
        if batch_idx % 10 == 0:
            loss.item()  # examples/mnist prints it here (log_interval=10)


def naive_tensor_epoch(model, x, y, batch_size, optimizer, autocast) -> None:
    """x (N, 1, 28, 28) normalised floats and y (N,) already on the device."""
    model.train()
    for idx in torch.randperm(len(y), device=x.device).split(batch_size):
        optimizer.zero_grad()
        with autocast():
            loss = F.nll_loss(model(x[idx]), y[idx])
        loss.backward()
        optimizer.step()


# --- LSTM language models ---------------------------------------------------------------------
class WordLanguageModel(nn.Module):
    def __init__(self, vocab: int, hidden: int, layers: int, dropout: float):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(vocab, hidden)
        self.rnn = nn.LSTM(hidden, hidden, layers, dropout=dropout)
        self.decoder = nn.Linear(hidden, vocab)
        for w in (self.encoder.weight, self.decoder.weight):
            nn.init.uniform_(w, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)

    def forward(self, tokens, state):  # (T, B) -> log-probs (T*B, V), state
        out, state = self.rnn(self.drop(self.encoder(tokens)), state)
        logits = self.decoder(self.drop(out))
        return F.log_softmax(logits.view(-1, logits.size(-1)), dim=1), state


class CellLoopLM(nn.Module):
    """Embedding -> LSTMCell x layers (Python loop over time) -> decoder, with variational
    masks: one per window for each layer's input, its recurrent state, and the output."""

    def __init__(self, vocab: int, hidden: int, layers: int, p: float, p_recurrent: float):
        super().__init__()
        self.p, self.p_recurrent = p, p_recurrent
        self.encoder = nn.Embedding(vocab, hidden)
        self.cells = nn.ModuleList(nn.LSTMCell(hidden, hidden) for _ in range(layers))
        self.decoder = nn.Linear(hidden, vocab)

    def mask(self, like: torch.Tensor, p: float) -> torch.Tensor:  # (B, H), scaled by 1/(1-p)
        if not self.training or p == 0:
            return torch.ones_like(like)
        return like.new_empty(like.shape).bernoulli_(1 - p) / (1 - p)

    def forward(self, tokens, state):  # (T, B) -> log-probs (T*B, V), [(h, c)] per layer
        x = self.encoder(tokens)  # (T, B, H)
        if state is None:
            zeros = x.new_zeros(x.shape[1:])
            state = [(zeros, zeros)] * len(self.cells)
        in_masks = [self.mask(x[0], self.p) for _ in self.cells]
        rec_masks = [self.mask(x[0], self.p_recurrent) for _ in self.cells]
        outputs = []
        for t in range(x.size(0)):
            h_t = x[t]
            new_state = []
            for cell, (h, c), m_in, m_rec in zip(self.cells, state, in_masks, rec_masks,
                                                 strict=True):
                h, c = cell(h_t * m_in, (h * m_rec, c))
                new_state.append((h, c))
                h_t = h
            state = new_state
            outputs.append(h_t)
        out = torch.stack(outputs) * self.mask(x[0], self.p)  # (T, B, H)
        logits = self.decoder(out)
        return F.log_softmax(logits.view(-1, logits.size(-1)), dim=1), state


def repackage(state):
    """Detach a hidden state from the previous window's graph (nested tuples/lists)."""
    if isinstance(state, torch.Tensor):
        return state.detach()
    return None if state is None else type(state)(repackage(s) for s in state)


def word_lm_epoch(model, stream, bptt: int, lr: float, clip: float, autocast) -> None:
    """stream (T_total, B) token ids on the device; one pass of truncated BPTT."""
    model.train()
    state = None
    for start in range(0, stream.size(0) - 1, bptt):
        length = min(bptt, stream.size(0) - 1 - start)
        data = stream[start : start + length]
        targets = stream[start + 1 : start + 1 + length].reshape(-1)
        state = repackage(state)
        model.zero_grad()
        with autocast():
            log_probs, state = model(data, state)
            loss = F.nll_loss(log_probs, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)
