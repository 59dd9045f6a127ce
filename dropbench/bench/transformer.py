"""Case `transformer`: one epoch of each Transformer family, dropbench's real training loop
(`Run.train_epoch`) against the same model written in plain PyTorch (reference_transformer.py:
nn.TransformerEncoderLayer and a hand-written loop), side by side in one process.

- ViT: the README's small ViT (patch 7, dim 64, 2 blocks, 4 heads, MLP ratio 2; dropout 0.1 on
  the embeddings, the attention probabilities and each sub-layer's output; AdamW lr 1e-3,
  clipping at 1, batches of 64) on the 7,000 training digits of the real 10k-digit MNIST sample
  (the folder named by the DROPBENCH_MNIST_SAMPLE environment variable, else
  ../shared/data/mnist-sample next to the checkout). Without the sample it times the embedded
  8x8 digits instead (patch 4), and the row says so.
- LM: the default transformer_lm (dim 128, 2 blocks, 4 heads, MLP ratio 4, tied, context 64;
  the same dropout and optimiser) on random token ids over PTB's 10,000-word vocabulary, batches
  of 20 columns: a fixed number of windows, so the rate (tokens/s) gives a PTB epoch's time
  (929,589 training tokens).
"""

import os
from pathlib import Path

import torch

from dropbench.bench.common import Settings, compose, head, missing, trainer_epoch
from dropbench.bench.harness import Ratio, Row, measure_all, unavailable
from dropbench.bench.reference_transformer import (
    PlainTransformerLM,
    PlainViT,
    classifier_epoch,
    lm_epoch,
)
from dropbench.data import load_data
from dropbench.data.mnist_sample import SAMPLE_VAL_SIZE, carve_mnist_sample, default_sample_dir

VIT = {"dim": 64, "depth": 2, "heads": 4, "mlp_ratio": 2.0}
LM = {"dim": 128, "depth": 2, "heads": 4, "mlp_ratio": 4.0}
P, LR, CLIP, VIT_BATCH = 0.1, 1e-3, 1.0, 64
VOCAB, LM_BATCH, BPTT, LM_WINDOWS = 10000, 20, 64, 20  # windows timed at scale 1
MNIST_SAMPLE_TRAIN = 8000  # carved train file; 1,000 of it becomes validation: 7,000 trained
DROPOUT = ["dropout=standard", f"dropout.p={P}", f"dropout.p_input={P}", f"dropout.p_attn={P}"]
OPTIM = ["optim=adamw", f"optim.lr={LR}", f"optim.clip={CLIP}"]


def sample_dir() -> Path | None:
    env = os.environ.get("DROPBENCH_MNIST_SAMPLE")
    here = Path(env) if env else default_sample_dir(Path(__file__).resolve().parents[2])
    return here if (here / "t10k-images-idx3-ubyte.gz").is_file() else None


def model_keys(values: dict) -> list[str]:
    return [f"model.{k}={v}" for k, v in values.items()]


def vit_config(s: Settings):
    """(config, what the row is timed on): the MNIST sample, else the embedded digits."""
    base = ["model=vit", *model_keys(VIT), *DROPOUT, *OPTIM, f"trainer.batch_size={VIT_BATCH}"]
    sample = sample_dir()
    if sample is None:
        return compose(s, [*base, "model.patch=4"]), "embedded 8x8 digits (no MNIST sample)"
    root = carve_mnist_sample(sample, s.workdir / "mnist-sample", MNIST_SAMPLE_TRAIN)
    cfg = compose(s, [*base, "model.patch=7", "dataset=mnist", "dataset.download=false",
                      f"dataset.val_size={SAMPLE_VAL_SIZE}"])
    cfg.data_dir = str(root)
    return cfg, "real MNIST sample"


def vit_reference(s: Settings, cfg, data):
    def prepare():
        torch.manual_seed(0)
        channels, side, _ = data.input_shape
        model = PlainViT(channels, side, data.num_classes, cfg.model.patch, p=P,
                         **VIT).to(s.device)
        opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=cfg.optim.weight_decay)
        x, y = data.train.x, data.train.y
        return (lambda: classifier_epoch(model, x, y, VIT_BATCH, opt, CLIP),
                lambda: classifier_epoch(model, x[:VIT_BATCH * 4], y[:VIT_BATCH * 4],
                                         VIT_BATCH, opt, CLIP))

    return prepare


def vit_rows(s: Settings):
    cfg, source = vit_config(s)
    data = load_data(cfg.dataset, cfg.data_dir, s.device)
    if s.scale < 1:  # a quick look (the tests): part of the epoch
        data = head(data, max(4 * VIT_BATCH, round(len(data.train) * s.scale)))
    n = len(data.train)
    variants = [
        (Row("vit", "dropbench vit (standard 0.1)", "samples", n, note=source),
         trainer_epoch(s, cfg, data, 4 * VIT_BATCH)),
        (Row("vit", "reference: nn.TransformerEncoderLayer loop", "samples", n, note=source),
         vit_reference(s, cfg, data)),
    ]
    return measure_all(variants, s.device, s.warmup, s.reps)


def lm_rows(s: Settings):
    from dropbench.data.text import LanguageModelData

    windows = max(2, round(LM_WINDOWS * s.scale))
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, VOCAB, ((windows * BPTT + 1) * LM_BATCH,), generator=g).to(s.device)
    held_out = ids[: 40 * LM_BATCH]
    data = LanguageModelData(ids, held_out, held_out, [str(i) for i in range(VOCAB)])
    stream = ids.view(LM_BATCH, -1).t().contiguous()  # (T, B) as batchify lays it out
    cfg = compose(s, ["model=transformer_lm", "dataset=ptb", "dataset.download=false",
                      *model_keys(LM), f"model.bptt={BPTT}", *DROPOUT, *OPTIM,
                      f"trainer.batch_size={LM_BATCH}"])

    def reference():
        torch.manual_seed(0)
        model = PlainTransformerLM(VOCAB, BPTT, p=P, **LM).to(s.device)
        opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=cfg.optim.weight_decay)
        return (lambda: lm_epoch(model, stream, BPTT, opt, CLIP),
                lambda: lm_epoch(model, stream[: BPTT + 1], BPTT, opt, CLIP))

    work = windows * BPTT * LM_BATCH
    note = "random ids, PTB's 10k vocabulary"
    variants = [
        (Row("tlm", "dropbench transformer_lm (standard 0.1)", "tokens", work, note=note),
         trainer_epoch(s, cfg, data, (BPTT + 1) * LM_BATCH)),
        (Row("tlm", "reference: nn.TransformerEncoderLayer loop", "tokens", work, note=note),
         reference),
    ]
    return measure_all(variants, s.device, s.warmup, s.reps)


def transformer_case(s: Settings):
    why = missing(schemes=["standard"], models=["vit", "transformer_lm"], tasks=["classify", "lm"])
    if why:
        return [unavailable("vit", "all Transformer variants", "samples", why)], []
    rows = vit_rows(s) + lm_rows(s)
    vit, vit_ref, lm, lm_ref = (r.key for r in rows)
    return rows, [
        Ratio("ViT: dropbench speed / plain PyTorch loop", vit, vit_ref, ">=", 0.9),
        Ratio("Transformer LM: dropbench speed / plain PyTorch loop", lm, lm_ref, ">=", 0.9),
    ]
