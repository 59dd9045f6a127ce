"""Language modelling: token streams cut into parallel columns and read in truncated-BPTT
windows, with the hidden state carried from one window to the next (Zaremba et al. 2014).

The stream is split into B contiguous columns; window i of every column is one batch, so
column b at window i+1 continues exactly where it stopped at window i. The state crosses the
window boundary with its gradient history cut (detached). Training order is never shuffled.

Variable-length BPTT (Merity et al. 2017, `model.variable_bptt`): each training window's length
is drawn from N(bptt, 5) with probability 0.95, else from N(bptt / 2, 5), at least 5 steps, and
that window trains at lr * length / bptt (`lr_scale`, read by the trainer). The draws use the
trainer's seeded, checkpointed batch-order generator, so a resumed run sees the same windows.

Monte-Carlo evaluation (Gal & Ghahramani 2016): T stochastic passes over the split, each from a
zero state with its own masks (drawn per window, as in training) and its own carried state; the
probabilities each pass gives the correct next word are averaged, so the MC perplexity is
exp(-mean over words of log mean_t p_t(word)). It is computed in log space (logaddexp), so a
tiny probability cannot underflow.

An objective with several passes (R-Drop, engine/objectives.py) runs each training window
through the model once per pass, every pass from the same carried state and each drawing its
own masks (locked and variational masks are drawn per forward call, so per pass); the state
carried on to the next window is the first pass's, so the state a window starts from follows
one chain of dropout masks, as in a run with one pass. The passes run one after another, not
as one forward of the batch stacked on itself: several language-model schemes share a mask
across the batch (embedding dropout's word mask, weight drop's matrix mask), and the states'
batch dim differs between model layouts. AR/TAR (model.ar, model.tar) are taken from the last
pass, the one the model's regularizer() keeps.
"""

import math

import torch
import torch.nn.functional as F

from dropbench import rundir
from dropbench.engine.mc import mc_mode
from dropbench.engine.objectives import CrossEntropy
from dropbench.engine.task import Task
from dropbench.errors import DropbenchError

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


def train_eval_stream(train: torch.Tensor, min_tokens: int, val_steps: int) -> torch.Tensor:
    """The "train" side of the generalisation gap, scored exactly like validation: the same
    EVAL_BATCH_SIZE columns read with the state carried, over at least as many tokens as the
    validation text (and at least `min_tokens`), so both estimates warm up alike and are
    equally noisy. The columns are the first rows of the whole training text batchified, i.e.
    EVAL_BATCH_SIZE contiguous passages spread evenly over the corpus, not its opening only.
    (T, EVAL_BATCH_SIZE)."""
    columns = batchify(train, EVAL_BATCH_SIZE)  # (N // B, B): column b starts at b * N / B
    steps = max(val_steps, -(-min_tokens // EVAL_BATCH_SIZE))
    return columns[:steps]


def detach(state):
    """Cut the gradient history of a (nested) hidden state, keeping its values."""
    if isinstance(state, torch.Tensor):
        return state.detach()
    if state is None:
        return None
    return type(state)(detach(s) for s in state)


class LanguageModelTask(Task):
    metric = "ppl"
    supports_mc = True  # eval.mode=mc and eval.compare work (Gal's MC perplexity)

    def __init__(self, data, batch_size: int, bptt: int, train_eval_tokens: int,
                 mc_samples: int = 0, variable_bptt: bool = False, objective=None):
        self.objective = objective if objective is not None else CrossEntropy()
        self.bptt, self.variable_bptt = bptt, variable_bptt
        self.lr_scale = 1.0  # of the current training window (variable-length BPTT)
        self.mc_samples = mc_samples  # > 0: score by the MC average of this many passes
        self.train = batchify(data.train, batch_size)  # (T, B)
        val_stream = batchify(data.val, EVAL_BATCH_SIZE)
        self.eval_streams = {
            "train_eval": train_eval_stream(data.train, train_eval_tokens, val_stream.size(0)),
            "val": val_stream,
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
        if not self.variable_bptt:
            yield from windows(self.train, self.bptt)
            return
        start, last = 0, self.train.size(0) - 1
        while start < last:
            length = min(self.draw_window_length(generator), last - start)
            self.lr_scale = length / self.bptt
            yield self.train[start : start + length], self.train[start + 1 : start + 1 + length]
            start += length
        self.lr_scale = 1.0

    def draw_window_length(self, generator: torch.Generator = None) -> int:
        """Merity et al.: N(bptt, 5) with probability 0.95, else N(bptt / 2, 5); at least 5."""
        mean = self.bptt if torch.rand((), generator=generator) < 0.95 else self.bptt / 2
        return max(5, int(torch.normal(mean, 5.0, (), generator=generator)))

    def step(self, model, batch):
        """Mean token NLL of one window, carrying the hidden state on to the next window."""
        x, y = batch  # (T, B) each
        logits, state = model(x, self.state)  # (T, B, V)
        self.state = detach(state)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
        n = y.new_tensor(y.numel(), dtype=torch.float32)
        return loss, torch.stack([loss.detach() * n, torch.zeros_like(n), n])

    def train_step(self, model, batch):
        """The objective's loss over its passes of one window, each pass from the same carried
        state; the first pass's state is carried on (module docstring)."""
        x, y = batch  # (T, B) each
        start, logits = self.state, []
        for i in range(self.objective.passes):
            out, state = model(x, start)  # (T, B, V)
            if i == 0:
                self.state = detach(state)
            logits.append(out.reshape(-1, out.size(-1)))
        loss, ce, extra = self.objective.loss(logits, y.reshape(-1))
        n = y.new_tensor(y.numel(), dtype=torch.float32)
        return loss, torch.stack([ce * n, torch.zeros_like(n), n, *(v * n for v in extra)])

    def finish(self, sums: torch.Tensor) -> dict:
        loss_sum, _, n, *extra = sums.tolist()  # extra: training under an objective's columns
        columns = self.objective.columns if extra else ()
        return self.scores(loss_sum / n) | {col: v / n for col, v in
                                             zip(columns, extra, strict=True)}

    def scores(self, loss: float) -> dict:
        return {"loss": loss, self.metric: math.exp(min(loss, 700.0))}  # exp overflows past 709

    def evaluate(self, model, split: str) -> dict:
        """Loss and perplexity on 'train_eval', 'val' or 'test': the deterministic eval-mode
        network, or the MC average of eval.mc_samples passes under eval.mode=mc."""
        if self.mc_samples:
            return self.mc_curve(model, split, [self.mc_samples])[self.mc_samples]
        return self.scale_scores(model, split)

    @torch.no_grad()
    def scale_scores(self, model, split: str) -> dict:
        """Eval mode, one pass from a zero state with the state carried across windows."""
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

    def target_log_probs(self, model, stream: torch.Tensor) -> torch.Tensor:
        """log p(correct next word) for every target of `stream`, (N,), from one pass that
        starts at a zero state and carries it across windows."""
        state, out = None, []
        for x, y in windows(stream, self.bptt):
            logits, state = model(x, state)  # (T, B, V)
            log_probs = F.log_softmax(logits.float(), dim=-1)
            out.append(log_probs.gather(-1, y.unsqueeze(-1)).flatten())
        return torch.cat(out)

    @torch.no_grad()
    def mc_curve(self, model, split: str, counts) -> dict[int, dict]:
        """{T: {loss, ppl}} of the MC average after T passes, for every T in `counts`, from
        max(counts) passes in all (dropout on, as in training; see the module docstring)."""
        counts = sorted(set(counts))
        stream = self.eval_streams[split]
        scores, total = {}, None
        with mc_mode(model):
            for t in range(1, counts[-1] + 1):
                log_p = self.target_log_probs(model, stream)
                total = log_p if total is None else torch.logaddexp(total, log_p)
                if t in counts:  # log of the mean probability = log(sum) - log(t)
                    scores[t] = self.scores(-(total - math.log(t)).mean().item())
        return scores

    def compare(self, model, eval_cfg) -> dict:
        """Scale vs. MC perplexity on the test text, plus the curve over T, for summary.json."""
        curve = self.mc_curve(model, "test", [*eval_cfg.curve, eval_cfg.mc_samples])

        def named(scores: dict) -> dict:
            return {rundir.test_key(k): v for k, v in scores.items()}

        return {
            "scale": named(self.scale_scores(model, "test")),
            "mc": {"samples": eval_cfg.mc_samples, **named(curve[eval_cfg.mc_samples])},
            "curve": [{"samples": t, **named(s)} for t, s in curve.items()],
        }
