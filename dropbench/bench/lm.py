"""Case 4: LSTM language models at the shapes of Zaremba et al. 2014 (small: 2x200, bptt 20;
medium: 2x650, bptt 35; batch 20, PTB's 10k vocabulary) on random token ids.

dropbench runs its real LM task and training loop (`Run.train_epoch`: truncated BPTT with the
state carried across windows, gradient clipping at 5, SGD lr 1) with no dropout (fused nn.LSTM),
Zaremba's dropout (standard, 0.5 on every non-recurrent connection), locked dropout (AWD-style
masks 0.5 + weight-drop 0.25 on the recurrent weights, fused kernel) and Gal's variational
dropout (per-example masks 0.5 on inputs/outputs and 0.25 on h_{t-1}: a loop over time). The
references do the same windows with the same optimiser settings: examples/word_language_model's
model (nn.LSTM + nn.Dropout 0.5), and the same variational masks applied by hand in an
nn.LSTMCell loop.
"""

import torch

from dropbench.bench.common import Settings, compose, missing, trainer_epoch
from dropbench.bench.harness import Ratio, Row, measure_all, unavailable
from dropbench.bench.limits import lstm_lm_window_products
from dropbench.bench.reference import CellLoopLM, WordLanguageModel, word_lm_epoch

VOCAB, BATCH = 10000, 20
SIZES = {  # name -> (hidden, bptt, init_scale, timed windows at scale 1)
    "small": (200, 20, 0.1, 30),
    "medium": (650, 35, 0.05, 6),
}
DROPOUT = {
    "none": ["dropout=none"],
    "zaremba": ["dropout=standard", "dropout.p=0.5", "dropout.p_input=0.5",
                "dropout.p_output=0.5"],
    "locked": ["dropout=locked", "dropout.p=0.5", "dropout.p_input=0.5", "dropout.p_output=0.5",
               "dropout.p_recurrent=0.25"],
    "variational": ["dropout=variational", "dropout.p=0.5", "dropout.p_input=0.5",
                    "dropout.p_output=0.5", "dropout.p_recurrent=0.25"],
}
SCHEME_OF = {"none": "none", "zaremba": "standard", "locked": "locked",
             "variational": "variational"}


def lm_data(tokens: int, device):
    from dropbench.data.text import LanguageModelData  # the rnn branch's corpus bundle

    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, VOCAB, (tokens,), generator=g).to(device)
    held_out = ids[: 40 * BATCH]
    return LanguageModelData(ids, held_out, held_out, [str(i) for i in range(VOCAB)])


def lm_config(s: Settings, hidden: int, bptt: int, init_scale: float, dropout: list[str]):
    # dataset=ptb only so that validation accepts a language model; the data are lm_data's
    return compose(s, ["model=lstm", "dataset=ptb", "dataset.download=false",
                       f"model.hidden=[{hidden},{hidden}]", f"model.bptt={bptt}",
                       f"model.init_scale={init_scale}", "optim=sgd", "optim.lr=1.0",
                       "optim.momentum=0.0", "optim.clip=5", f"trainer.batch_size={BATCH}",
                       *dropout])


def reference_prepare(s: Settings, model_fn, stream, warm_stream, bptt: int):
    def prepare():
        torch.manual_seed(0)
        model = model_fn().to(s.device)

        def epoch(tokens):
            return lambda: word_lm_epoch(model, tokens, bptt, lr=1.0, clip=5.0,
                                         autocast=s.autocast())

        return epoch(stream), epoch(warm_stream)

    return prepare


def size_rows(s: Settings, size: str):
    hidden, bptt, init_scale, full_windows = SIZES[size]
    windows = max(2, round(full_windows * s.scale))
    work = windows * bptt * BATCH
    data = lm_data((windows * bptt + 1) * BATCH, s.device)
    stream = data.train.view(BATCH, -1).t().contiguous()  # (T, B) as batchify lays it out
    warm_stream = stream[: bptt + 1]
    variants = []
    for label, overrides in DROPOUT.items():
        cfg = lm_config(s, hidden, bptt, init_scale, overrides)
        warm_tokens = (bptt + 1) * BATCH
        variants.append((Row(f"lm-{size}", f"dropbench {label}", "tokens", work),
                         trainer_epoch(s, cfg, data, warm_tokens)))
    references = {
        "reference: word_language_model (nn.LSTM, dropout 0.5)":
            lambda: WordLanguageModel(VOCAB, hidden, 2, 0.5),
        "reference: LSTMCell loop, variational masks":
            lambda: CellLoopLM(VOCAB, hidden, 2, 0.5, 0.25),
    }
    for label, model_fn in references.items():
        variants.append((Row(f"lm-{size}", label, "tokens", work),
                         reference_prepare(s, model_fn, stream, warm_stream, bptt)))

    def limit():
        window = lstm_lm_window_products(VOCAB, hidden, 2, bptt, BATCH, s.device,
                                         s.matmul_dtype())
        return (lambda: [window() for _ in range(windows)]), window

    variants.append((Row(f"lm-{size}", "matmul limit (fwd + both bwd products)", "tokens",
                         work), limit))
    return measure_all(variants, s.device, s.warmup, s.reps)


def lm_case(s: Settings):
    rows, ratios = [], []
    why = missing(schemes=SCHEME_OF.values(), models=["lstm"], tasks=["lm"])
    for size in SIZES:
        if why:
            rows.append(unavailable(f"lm-{size}", "all LM variants", "tokens", why))
            continue
        rows += size_rows(s, size)
        none, zaremba, locked, variational = (f"lm-{size}/dropbench {k}" for k in DROPOUT)
        wlm = f"lm-{size}/reference: word_language_model (nn.LSTM, dropout 0.5)"
        cells = f"lm-{size}/reference: LSTMCell loop, variational masks"
        limit = f"lm-{size}/matmul limit (fwd + both bwd products)"
        ratios += [
            Ratio(f"LM {size}: dropbench Zaremba speed / word_language_model", zaremba, wlm,
                  ">=", 1.0),
            Ratio(f"LM {size}: locked time / dropbench no-dropout time", none, locked,
                  "<=", 1.25),
            Ratio(f"LM {size}: variational time / dropbench no-dropout time", none, variational,
                  "<=", 1.6),
            Ratio(f"LM {size}: dropbench Zaremba speed / matmul limit", zaremba, limit,
                  None, None),
            Ratio(f"LM {size}: dropbench variational speed / LSTMCell loop", variational, cells,
                  None, None),
        ]
    return rows, ratios
