"""The language-model task: batchify, BPTT windows, state carried and detached, perplexity."""

import math

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from dropbench.data.text import LanguageModelData
from dropbench.engine.lm import (
    EVAL_BATCH_SIZE,
    LanguageModelTask,
    batchify,
    detach,
    train_eval_stream,
    windows,
)
from dropbench.engine.optim import build_scheduler


def test_batchify_makes_contiguous_columns_and_drops_the_remainder():
    stream = batchify(torch.arange(23), 4)  # 23 // 4 = 5 steps; 3 tokens dropped
    assert stream.shape == (5, 4)
    assert stream[:, 0].tolist() == [0, 1, 2, 3, 4]  # column b is the b-th slice, in order
    assert stream[:, 3].tolist() == [15, 16, 17, 18, 19]
    assert stream[1].tolist() == [1, 6, 11, 16]


def test_windows_cover_the_stream_with_targets_shifted_by_one():
    stream = batchify(torch.arange(40), 4)  # (10, 4)
    pairs = list(windows(stream, 4))
    assert [x.shape[0] for x, _ in pairs] == [4, 4, 1]  # 9 predictions: 4 + 4 + 1
    for x, y in pairs:
        assert torch.equal(y, x + 1)  # within a column the next token is the next id
    assert torch.equal(torch.cat([x for x, _ in pairs]), stream[:-1])


class UniformLM(torch.nn.Module):
    """Scores every word alike; records the state it is handed to check the carry."""

    def __init__(self, vocab_size):
        super().__init__()
        self.vocab_size, self.seen = vocab_size, []
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x, state=None):  # (T, B) -> (T, B, V)
        self.seen.append(state)
        logits = self.w * torch.ones(*x.shape, self.vocab_size)
        return logits, [x[-1:].float() * self.w + (0 if state is None else state[0])]


def lm_data(n_train=200, vocab=37):
    g = torch.Generator().manual_seed(0)
    ids = lambda n: torch.randint(vocab, (n,), generator=g)  # noqa: E731
    return LanguageModelData(ids(n_train), ids(101), ids(95), [f"w{i}" for i in range(vocab)])


def test_a_uniform_model_scores_perplexity_equal_to_the_vocabulary_size():
    task = LanguageModelTask(lm_data(), batch_size=4, bptt=7, train_eval_tokens=60)
    model = UniformLM(37)
    for split in ("train_eval", "val", "test"):
        scores = task.evaluate(model, split)
        assert scores["ppl"] == pytest.approx(37, rel=1e-5)
        assert scores["loss"] == pytest.approx(math.log(37), rel=1e-6)


def test_state_is_carried_across_windows_detached_and_reset_each_epoch():
    task = LanguageModelTask(lm_data(), batch_size=4, bptt=7, train_eval_tokens=60)
    model = UniformLM(37)
    for _ in range(2):  # two epochs
        model.seen.clear()
        for batch in task.train_batches(torch.Generator()):
            loss, _ = task.step(model, batch)
            loss.backward()
        assert model.seen[0] is None  # each epoch starts from a zero state
        assert all(s is not None and not s[0].requires_grad for s in model.seen[1:])
    assert len(model.seen) == task.num_train_batches() == math.ceil((200 // 4 - 1) / 7)


def test_eval_uses_batch_size_ten_and_leaves_the_training_state_alone():
    task = LanguageModelTask(lm_data(), batch_size=4, bptt=7, train_eval_tokens=60)
    assert task.eval_streams["val"].shape == (101 // EVAL_BATCH_SIZE, EVAL_BATCH_SIZE)
    # train-eval is laid out like val: as many steps as val's 10 (more than 60 tokens ask for)
    assert task.eval_streams["train_eval"].shape == (101 // EVAL_BATCH_SIZE, EVAL_BATCH_SIZE)
    task.state = ["kept"]
    task.evaluate(UniformLM(37), "val")
    assert task.state == ["kept"]


def test_train_eval_reads_passages_spread_over_the_whole_training_text():
    train = torch.arange(1000)
    stream = train_eval_stream(train, min_tokens=0, val_steps=7)  # (7, 10)
    assert stream.shape == (7, EVAL_BATCH_SIZE)
    assert stream[0].tolist() == list(range(0, 1000, 100))  # column b starts at b * N / 10
    assert stream[:, 9].tolist() == list(range(900, 907))  # each column is contiguous
    assert train_eval_stream(train, min_tokens=300, val_steps=7).shape[0] == 30
    assert train_eval_stream(train, min_tokens=10**6, val_steps=7).shape[0] == 100  # capped


def test_a_memorising_model_scores_train_eval_below_val(cli, tmp_path):
    """Random words: nothing to learn that carries over to val, so a model without dropout
    can only memorise. Its train-eval perplexity must end below val's, as the curves claim."""
    from tests.test_rnn_cli import corpus_text
    from tests.test_text_data import write_corpus

    corpus = write_corpus(tmp_path / "corpus",
                          texts=(corpus_text(100, 0), corpus_text(40, 1), corpus_text(40, 2)))
    result = cli("train", "dataset=textdir", f"dataset.path={corpus}", "model=lstm",
                 "dropout=none", "model.hidden=[128]", "model.bptt=16", "trainer.batch_size=4",
                 "trainer.epochs=15", "optim=adam", "optim.lr=0.01", "trainer.progress=false",
                 "trainer.threads=1", "hydra.run.dir=run")
    assert result.returncode == 0, result.stderr
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv")
    last = metrics.iloc[-1]
    # measured: train-eval ~1.2, val ~600 (40 words: uniform guessing scores 41)
    assert last["train_eval_ppl"] < 5 < 41 < last["val_ppl"]
    assert metrics["train_eval_ppl"].iloc[-1] < metrics["train_eval_ppl"].iloc[0]


def test_detach_keeps_nested_structure():
    h = torch.ones(2, requires_grad=True) * 2
    out = detach([(h, h), h, None])
    assert isinstance(out[0], tuple) and not out[0][1].requires_grad and out[2] is None


def test_decay_after_schedule_matches_zaremba():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    cfg = OmegaConf.create({"schedule": "decay_after", "lr_decay": 2.0, "decay_after": 4})
    scheduler = build_scheduler(cfg, opt, epochs=7)
    lrs = []
    for _ in range(7):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    assert lrs == [1.0, 1.0, 1.0, 1.0, 0.5, 0.25, 0.125]
