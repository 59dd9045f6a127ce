"""Language modelling: token streams cut into parallel columns and read in truncated-BPTT
windows, with the hidden state carried from one window to the next (Zaremba et al. 2014).

The stream is split into B contiguous columns; window i of every column is one batch, so
column b at window i+1 continues exactly where it stopped at window i. The state crosses the
window boundary with its gradient history cut (detached). Training order is never shuffled.
"""

import math

import torch
import torch.nn.functional as F

from dropbench import DropbenchError

EVAL_BATCH_SIZE = 10  # the usual choice for PTB valid/test since Zaremba et al.'s code


def batchify(ids: torch.Tensor, batch_size: int) -> torch.Tensor:
    """(N,) -> (N // B, B): column b holds the b-th contiguous slice; the remainder is dropped."""
    steps = ids.size(0) // batch_size
    return ids[: steps * batch_size].view(batch_size, steps).t().contiguous()


def windows(stream: torch.Tensor, bptt: int):
    """(T, B) -> (inputs, targets) pairs of (<=bptt, B); targets are the inputs shifted by one."""
    for start in range(0, stream.size(0) - 1, bptt):
        length = min(bptt, stream.size(0) - 1 - start)
        yield stream[start : start + length], stream[start + 1 : start + 1 + length]


def detach(state):
    """Cut the gradient history of a (nested) hidden state, keeping its values."""
    if isinstance(state, torch.Tensor):
        return state.detach()
    if state is None:
        return None
    return type(state)(detach(s) for s in state)


class LanguageModelTask:
    metric = "ppl"

    def __init__(self, data, batch_size: int, bptt: int, train_eval_tokens: int):
        self.bptt = bptt
        self.train = batchify(data.train, batch_size)  # (T, B)
        # Eval-mode score on a fixed slice of the training text: the "train" side of the gap.
        self.eval_streams = {
            "train_eval": batchify(data.train[:train_eval_tokens], EVAL_BATCH_SIZE),
            "val": batchify(data.val, EVAL_BATCH_SIZE),
            "test": batchify(data.test, EVAL_BATCH_SIZE),
        }
        for name, stream in [("train", self.train), *self.eval_streams.items()]:
            if stream.size(0) < 2:
                raise DropbenchError(
                    f"the {name} text is too short to batch ({stream.size(0)} steps per "
                    f"column); it needs at least 2 * batch size tokens (train: "
                    f"trainer.batch_size={batch_size}; others: {EVAL_BATCH_SIZE})")
        self.state = None

    def num_train_batches(self) -> int:
        return math.ceil((self.train.size(0) - 1) / self.bptt)

    def train_batches(self, generator: torch.Generator = None):
        self.state = None  # every epoch starts from a zero state at the top of the columns
        yield from windows(self.train, self.bptt)

    def step(self, model, batch):
        """Mean token NLL of one window, carrying the hidden state on to the next window."""
        x, y = batch  # (T, B) each
        logits, state = model(x, self.state)  # (T, B, V)
        self.state = detach(state)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
        n = y.new_tensor(y.numel(), dtype=torch.float32)
        return loss, torch.stack([loss.detach() * n, torch.zeros_like(n), n])

    def finish(self, sums: torch.Tensor) -> dict:
        loss_sum, _, n = sums.tolist()
        loss = loss_sum / n
        return {"loss": loss, self.metric: math.exp(min(loss, 700.0))}  # exp overflows past 709

    @torch.no_grad()
    def evaluate(self, model, split: str) -> dict:
        """Loss and perplexity on 'train_eval', 'val' or 'test' in eval mode, one pass from a
        zero state with the state carried across windows."""
        stream = self.eval_streams[split]
        was_training = model.training
        model.eval()
        saved, self.state = self.state, None
        sums = torch.zeros(3, device=stream.device)
        for batch in windows(stream, self.bptt):
            sums += self.step(model, batch)[1]
        self.state = saved
        model.train(was_training)
        return self.finish(sums)
