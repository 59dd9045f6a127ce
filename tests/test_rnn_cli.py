"""The LSTM/GRU language models end to end through the real CLI, on small corpora in tmp_path."""

import json

import pandas as pd
import pytest

from tests.test_text_data import write_corpus

PRESETS = ["zaremba_small", "zaremba_medium", "zaremba_large", "gal_variational_medium",
           "awd_lstm"]


def corpus_text(n_lines, seed):
    import random

    rng = random.Random(seed)
    words = [f"w{i}" for i in range(40)]
    return "".join(" " + " ".join(rng.choices(words, k=rng.randint(3, 10))) + " \n"
                   for _ in range(n_lines))


@pytest.fixture
def corpus(tmp_path):
    texts = (corpus_text(150, 0), corpus_text(30, 1), corpus_text(30, 2))
    return write_corpus(tmp_path / "corpus", texts=texts)


# One math thread: on a shared, oversubscribed CPU torch's spinning worker threads make these
# tiny models 10-40x slower (measured: 5 ms vs 70-200 ms per window).
ONE_THREAD = {"OMP_NUM_THREADS": "1"}
TINY = ["model.hidden=[16,16]", "model.bptt=8", "trainer.batch_size=4", "trainer.epochs=2",
        "trainer.train_eval_size=300", "trainer.progress=false"]


def test_sweep_standard_and_variational_on_a_text_directory(cli, corpus, tmp_path):
    result = cli("train", "-m", "+experiment=zaremba_medium", "dataset=textdir",
                 f"dataset.path={corpus}", *TINY, "dropout=standard,variational",
                 "hydra.sweep.dir=sweep", env=ONE_THREAD)
    assert result.returncode == 0, result.stderr
    jobs = {o: p.parent for p in (tmp_path / "sweep").glob("*/summary.json")  # by scheme
            for o in json.loads(p.read_text())["overrides"] if o.startswith("dropout=")}
    runs = [jobs["dropout=standard"], jobs["dropout=variational"]]
    summaries = [json.loads((run / "summary.json").read_text()) for run in runs]
    assert [s["status"] for s in summaries] == ["completed", "completed"]
    assert summaries[0]["test_ppl"] != summaries[1]["test_ppl"]  # the schemes differ
    for summary in summaries:
        assert summary["metric"] == "ppl"
        assert 1 < summary["test_ppl"] < 41  # better than uniform over 40 words + <eos>
    metrics = pd.read_csv(runs[0] / "metrics.csv")
    for column in ["train_ppl", "train_eval_ppl", "val_ppl", "val_loss"]:
        assert column in metrics
    assert metrics["lr"].tolist() == [1.0, 1.0]  # decay_after=6 in the preset


def test_ptb_offline_with_altered_files_fails_in_one_line(cli, tmp_path):
    write_corpus(tmp_path / "data" / "ptb", names=("ptb.train.txt", "ptb.valid.txt",
                                                   "ptb.test.txt"))
    result = cli("train", "dataset=ptb", "dataset.download=false", "model=lstm", *TINY,
                 env=ONE_THREAD)
    assert result.returncode != 0
    error = result.stderr.strip().splitlines()[-1]
    assert "fails its checksum" in error and "dataset=textdir" in error
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_compose_and_record_the_paper_numbers(compose, preset):
    cfg = compose([f"+experiment={preset}"])
    assert cfg.dataset.name == "ptb" and cfg.model.name == "lstm"
    row = cfg.paper.rows[cfg.dropout.name]  # the row of the preset's own scheme
    assert row.metric == "test_ppl" and 50 < row.value < 120
    from dropbench.config import validate

    validate(cfg)
