"""Per-family defaults chosen by the config tree: recurrent language models get the optimiser
and batch size that learn on real text (conf/optim_defaults, conf/trainer_defaults), the
classifiers keep theirs, and presets and the command line still win."""

import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

LM_SGD = {"lr": 20.0, "momentum": 0.0, "clip": 0.25}


def optim_of(cfg) -> dict:
    return {"lr": cfg.optim.lr, "momentum": cfg.optim.momentum, "clip": cfg.optim.clip}


@pytest.mark.parametrize("model", ["lstm", "gru"])
def test_language_models_get_their_own_sgd_and_batch(compose, model):
    cfg = compose([f"model={model}", "dataset=textdir", "dataset.path=corpus"])
    assert cfg.optim.name == "sgd" and optim_of(cfg) == LM_SGD
    assert cfg.trainer.batch_size == 20


@pytest.mark.parametrize("model", ["mlp", "lenet", "alexnet", "resnet"])
def test_classifiers_keep_the_digits_calibrated_defaults(compose, model):
    cfg = compose([f"model={model}"])
    assert optim_of(cfg) == {"lr": 0.01, "momentum": 0.9, "clip": None}
    assert cfg.trainer.batch_size == 64


def test_presets_and_the_command_line_win(compose):
    zaremba = compose(["+experiment=zaremba_small"])
    assert optim_of(zaremba) == {"lr": 1.0, "momentum": 0.0, "clip": 5.0}
    assert zaremba.optim.schedule == "decay_after"
    awd = compose(["+experiment=awd_lstm"])
    assert awd.optim.name == "ntasgd" and awd.trainer.batch_size == 40
    mine = compose(["model=lstm", "optim.lr=3", "trainer.batch_size=7"])
    assert mine.optim.lr == 3 and mine.optim.clip == 0.25 and mine.trainer.batch_size == 7
    adam = compose(["model=lstm", "optim=adam"])  # Adam's language-model settings
    assert adam.optim.lr == 0.002 and adam.optim.clip == 5.0
    assert compose(["optim=adam"]).optim.lr == 0.001  # and the classifiers' Adam


def unigram_perplexity(corpus: Path) -> float:
    """exp of the mean -log p(word) on the validation text under the training text's word
    frequencies (every line ends in <eos>; the corpus maps rare words to <unk> itself)."""
    def words(split):
        return [w for line in (corpus / f"{split}.txt").read_text().splitlines()
                for w in [*line.split(), "<eos>"]]
    counts = Counter(words("train"))
    total = sum(counts.values())
    valid = words("valid")
    return math.exp(-sum(math.log(counts[w] / total) for w in valid) / len(valid))


@pytest.mark.slow
def test_the_readme_lstm_learns_real_english(cli, tmp_path):
    """The README's `dataset=textdir model=lstm` on Python's help topics (real English, 2,000
    words): three epochs with the defaults end far below the unigram perplexity (measured:
    val 98 against 196 after 3 epochs; the bound leaves room for other torch builds)."""
    corpus = tmp_path / "corpus"
    subprocess.run([sys.executable, "-m", "dropbench.data.pydoc_corpus", str(corpus)],
                   check=True, capture_output=True)
    result = cli("train", "dataset=textdir", f"dataset.path={corpus}", "model=lstm",
                 "trainer.epochs=3", "trainer.threads=1", "trainer.progress=false",
                 "hydra.run.dir=run", timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    val = pd.read_csv(tmp_path / "run" / "metrics.csv")["val_ppl"]
    assert val.iloc[-1] < 0.7 * unigram_perplexity(corpus)
