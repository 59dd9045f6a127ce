"""Training and eval throughput (tokens/s) of the Zaremba small/medium LSTMs per dropout scheme.

Synthetic tokens over PTB's 10k vocabulary, real model/optimizer/clipping code; the numbers in
docs/rnn.md come from this script. Example:

    PYTHONPATH=. python scripts/bench_rnn.py --sizes small medium --threads 1 --windows 20
"""

import argparse
import time

import torch
from omegaconf import OmegaConf

from dropbench.bench.harness import sync
from dropbench.data.text import LanguageModelData
from dropbench.dropout import get_scheme
from dropbench.dropout.catalog import scheme_config
from dropbench.engine.lm import detach
from dropbench.models.rnn import build_rnn_lm

SIZES = {"small": (200, 20), "medium": (650, 35), "large": (1500, 35)}  # hidden, bptt
SCHEMES = {  # label -> dropout config (rates as in the medium preset, recurrent 0.25)
    "standard (Zaremba)": {"name": "standard"},
    "locked + weight-drop": {"name": "locked", "p_recurrent": 0.25, "p_embed": 0.1},
    "variational (Gal)": {"name": "variational", "p_recurrent": 0.25, "p_embed": 0.1},
    "gate (eager loop)": {"name": "gate", "p_recurrent": 0.25},
    "gate (torch.compile)": {"name": "gate", "p_recurrent": 0.25, "compile": True},
}
VOCAB, BATCH, EVAL_BATCH = 10000, 20, 10


def build(size: str, scheme: dict, device):
    hidden, bptt = SIZES[size]
    model_cfg = OmegaConf.create({"name": "lstm", "hidden": [hidden, hidden], "embed_size": None,
                                  "tied": False, "init_scale": 0.05, "bptt": bptt})
    rates = {"p": 0.5, "p_input": 0.5, "p_output": 0.5, **scheme}
    keys = get_scheme(scheme["name"]).keys
    dropout_cfg = scheme_config(scheme["name"], **{k: v for k, v in rates.items() if k in keys})
    ids = torch.arange(VOCAB)
    data = LanguageModelData(ids, ids, ids, [str(i) for i in range(VOCAB)])
    return build_rnn_lm(model_cfg, dropout_cfg, data).to(device), bptt


def train_rate(model, bptt, windows, warmup, device) -> float:
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    x = torch.randint(VOCAB, (bptt, BATCH), device=device)
    y = torch.randint(VOCAB, (bptt, BATCH), device=device)
    model.train()
    state = None
    for i in range(warmup + windows):
        if i == warmup:
            sync(device)
            start = time.perf_counter()
        logits, state = model(x, state)
        state = detach(state)
        loss = torch.nn.functional.cross_entropy(logits.view(-1, VOCAB), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
    sync(device)
    return windows * bptt * BATCH / (time.perf_counter() - start)


@torch.no_grad()
def eval_rate(model, bptt, windows, warmup, device) -> float:
    x = torch.randint(VOCAB, (bptt, EVAL_BATCH), device=device)
    model.eval()
    state = None
    for i in range(warmup + windows):
        if i == warmup:
            sync(device)
            start = time.perf_counter()
        _, state = model(x, state)
    sync(device)
    return windows * bptt * EVAL_BATCH / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["small", "medium"], choices=SIZES)
    parser.add_argument("--schemes", nargs="+", default=list(SCHEMES), choices=SCHEMES)
    parser.add_argument("--windows", type=int, default=20, help="timed BPTT windows per cell")
    parser.add_argument("--warmup", type=int, default=3, help="untimed windows first "
                        "(torch.compile compiles during these)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else (
        f"cpu, {torch.get_num_threads()} thread(s)")
    print(f"# torch {torch.__version__}, {where}; batch {BATCH} (eval {EVAL_BATCH}), "
          f"{args.windows} timed windows after {args.warmup} warm-up")
    print("| model | scheme | train tokens/s | eval tokens/s | train epoch on PTB |")
    print("|---|---|---:|---:|---:|")
    for size in args.sizes:
        for label in args.schemes:
            torch.manual_seed(0)
            model, bptt = build(size, SCHEMES[label], device)
            train = train_rate(model, bptt, args.windows, args.warmup, device)
            evaluate = eval_rate(model, bptt, args.windows, args.warmup, device)
            epoch_min = 929589 / train / 60  # PTB's training tokens, <eos> included
            print(f"| {size} | {label} | {train:,.0f} | {evaluate:,.0f} | {epoch_min:,.1f} min |",
                  flush=True)


if __name__ == "__main__":
    main()
