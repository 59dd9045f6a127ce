"""Case `members`: one training epoch of K members stacked against the same K members' trainer
epochs one after another, for K = 1, 16 and 256, in one process: how what stacking saves grows
with the number of members. On a GPU, where one small member leaves most of the device idle,
this is the case to run first.

The members are the jobs of a seed x rate study of a small net: the MLP with one hidden layer
of 50 units (the UCI protocol's width) on the embedded 8x8 digits (1197 training images, or a
subset with --scale), batch 64, SGD; member k has seed k and dropout rate RATES[k % 4]. The
stacked rows run the batched launcher's stack (`stack_epochs`), the others the trainer's epoch
(`Run.train_epoch`) of each member in turn, on the same data. K = 1 shows what the stack costs
over a lone run. Work is counted in training images (K x the training set).
"""

import copy

from dropbench.bench.common import Settings, compose
from dropbench.bench.harness import Ratio, Row, measure_all
from dropbench.bench.sweep import RATES, one_after_another, stack_epochs

SIZES = (1, 16, 256)
DIGITS_TRAIN = 1197  # 1797 digits less the validation and test splits (300 each)
WIDTH = 50


def member_configs(s: Settings, size: int, n_train: int) -> list:
    """`size` members' configs: composed once, then each member's seed and rate set (composing
    256 configs through Hydra would take longer than the timed epochs)."""
    base = compose(s, ["dataset=digits", f"dataset.train_subset={n_train}", "model=mlp",
                       f"model.hidden=[{WIDTH}]", "dropout=standard"])
    cfgs = []
    for k in range(size):
        cfg = copy.deepcopy(base)
        cfg.seed, cfg.dropout.p = k, RATES[k % len(RATES)]
        cfgs.append(cfg)
    return cfgs


def members_case(s: Settings):
    from dropbench.data import load_data

    n_train = s.amount(DIGITS_TRAIN, minimum=64)
    warm = min(128, n_train)
    data = None
    variants = []
    for size in SIZES:
        cfgs = member_configs(s, size, n_train)
        if data is None:
            data = load_data(cfgs[0].dataset, s.workdir / "data", s.device)
        work = size * len(data.train)
        variants += [
            (Row("members", f"{size} members stacked", "samples", work),
             stack_epochs(cfgs, data, warm)),
            (Row("members", f"{size} members one after another", "samples", work),
             one_after_another(s, cfgs, data, warm)),
        ]
    rows = measure_all(variants, s.device, s.warmup, s.reps)
    ratios = [Ratio(f"members: {size} stacked, speed / one after another", stacked.key,
                    alone.key, None, None)
              for size, stacked, alone in zip(SIZES, rows[::2], rows[1::2], strict=True)]
    return rows, ratios
