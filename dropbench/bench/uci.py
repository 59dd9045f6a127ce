"""Case `uci`: Gal & Ghahramani's UCI protocol on yacht, splits 0 and 1 (24 selection trainings
of the (p, tau) grid and 2 refits, 4,000 epochs each, every one scored with 10,000 MC passes),
timed three ways side by side in interleaved rounds:

- `dropbench train -m +experiment=gal_uci` with the batched launcher (the protocol's default:
  each stage's jobs in one stack), a child process;
- the same command with Hydra's basic launcher (one training after another), a child process;
- a plain PyTorch loop training the same 26 nets one at a time in this process (the same
  6-50-1 net, Adam, batch 128, the weight prior, and the MC passes the protocol needs:
  validation for a selection training, test for a refit), with no files and no per-epoch
  scores.

It needs the real yacht data (`--data-dir DIR` holding uci/yacht/data/, as `dropbench data
download uci` writes it); without it the rows say so. A last row runs the largest stack the
protocol builds (every split's selection jobs, 240 members for yacht) for 40 epochs and 100 MC
passes, for its peak RSS, and another a bare `import torch` for its peak RSS: what every
command's peak starts from (this CUDA build maps and touches most of a gigabyte of libraries).
One more row draws, in bulk, as many random words as the 26 trainings' dropout masks take
from their members' generators: a floor under any launcher that draws each member's own masks.
The check compares the (p, tau) the two launchers choose on each split.
"""

import csv
import os
import sys
import time
from pathlib import Path

import torch
from torch import nn

from dropbench.bench.common import Settings
from dropbench.bench.harness import Check, Ratio, Row, Timed, rotated, run_timed, unavailable
from dropbench.data.uci import read_grid
from dropbench.data.uci_download import data_folder

SPLITS = (0, 1)
MC_PASSES = 10000
TRAININGS = 13 * len(SPLITS)  # the 4 x 3 grid and one refit per split
NAMES = {"batched": "26 trainings, batched launcher", "basic": "26 trainings, basic launcher",
         "plain": "26 trainings, plain PyTorch loop one at a time"}
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # the children train on one thread, as the loop
LARGEST = "the largest stack (every split's selection jobs), peak RSS"
BITS = "the 26 trainings' dropout bits alone, drawn in bulk"
TORCH_ALONE = "python -c 'import torch' alone, peak RSS"


def protocol_args(s: Settings, splits: list[int], epochs: int, sweep: Path,
                  launcher: str) -> list[str]:
    return ["train", "-m", "+experiment=gal_uci", "dataset.name=yacht",
            f"data_dir={s.data_dir}", f"protocol.splits=[{','.join(map(str, splits))}]",
            f"trainer.epochs={epochs}", "trainer.threads=1", f"hydra.sweep.dir={sweep}",
            f"hydra/launcher={launcher}", "~hydra.callbacks.report"]


def dropbench_cli(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "dropbench.cli", *args]


def record(row: Row, timed: Timed) -> None:
    """A command's time into its row, and its peak RSS (the largest over rounds)."""
    row.seconds.append(timed.wall)
    row.peak_rss_mb = max(row.peak_rss_mb or 0.0, round(timed.peak_rss_mb, 1))


def choices(sweep: Path) -> list[tuple]:
    with open(sweep / "protocol.csv") as f:
        return [(row["split"], row["p"], row["tau"]) for row in csv.DictReader(f)]


def plain_training(folder: Path, split: int, validation: bool, epochs: int, width: int,
                   p: float, tau: float) -> None:
    """One training of the protocol's net on a split in a plain loop, then its MC passes."""
    from dropbench.data.uci import read_split, standardiser
    from dropbench.models.prior import l2_strength

    s = read_split(folder, split, validation)
    xm, xs = standardiser(s.x_train)
    ym, ys = standardiser(s.y_train)
    x = torch.tensor((s.x_train - xm) / xs, dtype=torch.float32)
    y = torch.tensor((s.y_train - ym) / ys, dtype=torch.float32)
    scored = torch.tensor(((s.x_val if validation else s.x_test) - xm) / xs,
                          dtype=torch.float32)
    net = nn.Sequential(nn.Dropout(p), nn.Linear(x.shape[1], width), nn.ReLU(),
                        nn.Dropout(p), nn.Linear(width, 1))
    reg = l2_strength(0.01, p, len(x), tau)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x)).split(128):
            loss = nn.functional.mse_loss(net(x[idx]).squeeze(-1), y[idx])
            loss = loss + reg * (net[1].weight.pow(2).sum() + net[4].weight.pow(2).sum())
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():  # the MC passes, many per forward
        per_forward = max(1, 65536 // len(scored))
        for start in range(0, MC_PASSES, per_forward):
            net(scored.repeat(min(per_forward, MC_PASSES - start), 1))


def training_words(folder: Path, split: int, validation: bool, epochs: int, width: int,
                   passes: int = MC_PASSES, batch_size: int = 128) -> int:
    """How many 64-bit words one protocol training's dropout factors draw from its generator:
    one word per two factors (masks.keep_factors), per dropout layer (input and hidden) and
    forward, over the training batches and the final MC passes (a selection training scores
    validation and test, a refit test: RegressionTask.final_scores)."""
    from dropbench.data.uci import read_split
    from dropbench.engine.regress import ROWS_PER_PASS_CHUNK

    s = read_split(folder, split, validation)
    n, features = s.x_train.shape

    def per_forward(rows: int) -> int:
        return (rows * features + 1) // 2 + (rows * width + 1) // 2

    def mc(rows: int) -> int:
        per_chunk = max(1, ROWS_PER_PASS_CHUNK // rows)
        return sum(per_forward(min(per_chunk, passes - i) * rows)
                   for i in range(0, passes, per_chunk))

    batches = sum(per_forward(min(batch_size, n - i)) for i in range(0, n, batch_size))
    scored = mc(len(s.x_test)) + (mc(len(s.x_val)) if validation else 0)
    return epochs * batches + scored


def protocol_words(folder: Path, grid, epochs: int) -> int:
    """The 26 trainings' words: the (p, tau) grid's selection trainings and a refit per split."""
    selection = len(grid.rates) * len(grid.taus)
    return sum(selection * training_words(folder, split, True, epochs, grid.n_hidden)
               + training_words(folder, split, False, epochs, grid.n_hidden)
               for split in SPLITS)


def draw_words(total: int) -> float:
    """Seconds to draw `total` 64-bit words from one torch CPU generator in large blocks."""
    generator = torch.Generator().manual_seed(0)
    block = torch.empty(min(total, 1 << 22), dtype=torch.int64)
    start = time.perf_counter()
    for i in range(0, total, len(block)):
        block[: min(len(block), total - i)].random_(generator=generator)
    return time.perf_counter() - start


def plain_protocol(folder: Path, grid, epochs: int) -> None:
    for split in SPLITS:
        torch.manual_seed(split)
        for p in grid.rates:
            for tau in grid.taus:
                plain_training(folder, split, True, epochs, grid.n_hidden, p, tau)
        plain_training(folder, split, False, epochs, grid.n_hidden, grid.rates[0],
                       grid.taus[0])


def uci_case(s: Settings):
    folder = data_folder(s.data_dir, "yacht") if s.data_dir else None
    if folder is None or not (folder / "data.txt").exists():
        why = (f"no yacht data in {s.data_dir}/uci/yacht/data: run `dropbench data download "
               f"uci --data-dir DIR`, then `dropbench bench --data-dir DIR`")
        return [unavailable("uci", name, "trainings", why)
                for name in [*NAMES.values(), LARGEST]], []
    grid = read_grid(s.data_dir, "yacht", download=False)
    epochs = s.amount(grid.epochs, minimum=20)
    rows = {key: Row("uci", name, "trainings", TRAININGS) for key, name in NAMES.items()}
    words = protocol_words(folder, grid, epochs)
    bits = Row("uci", BITS, "trainings", TRAININGS,
               note=f"{words / 1e6:.0f} M words of torch's CPU generator: what no launcher "
                    f"drawing the members' own masks goes below")
    different = 0
    for r in range(max(1, s.reps)):
        for key in rotated(list(NAMES), r):
            if key == "plain":
                start = time.perf_counter()
                plain_protocol(folder, grid, epochs)
                rows[key].seconds.append(time.perf_counter() - start)
                continue
            launcher = "batched_wide" if key == "batched" else "basic"
            sweep = s.workdir / f"uci-{key}-{r}"
            timed = run_timed(dropbench_cli(protocol_args(s, list(SPLITS), epochs, sweep,
                                                          launcher)), s.workdir, ENV)
            record(rows[key], timed)
        bits.seconds.append(draw_words(words))
        batched, basic = (choices(s.workdir / f"uci-{k}-{r}") for k in ("batched", "basic"))
        different += sum(a != b for a, b in zip(batched, basic, strict=True))
    n_splits, per_split = grid.n_splits, len(grid.rates) * len(grid.taus)
    few = s.amount(40, minimum=2)
    largest = Row("uci", LARGEST, "trainings", per_split * n_splits)
    # 100 MC passes: the 10,000 would only add each member's scoring time, not memory
    timed = run_timed(dropbench_cli(
        [*protocol_args(s, list(range(n_splits)), few, s.workdir / "uci-largest",
                        "batched_wide"), "eval.mc_samples=100"]), s.workdir, ENV)
    record(largest, timed)
    # what every row's peak RSS starts from: this torch build's own import
    floor = Row("uci", TORCH_ALONE, "imports", 1)
    record(floor, run_timed([sys.executable, "-c", "import torch"], s.workdir, ENV))
    ratios = [Ratio("uci: batched launcher speed / basic launcher", rows["batched"].key,
                    rows["basic"].key, ">=", 20.0),
              Ratio("uci: batched launcher speed / plain loop one at a time",
                    rows["batched"].key, rows["plain"].key, ">=", 10.0)]
    agree = Check(f"uci: splits where batched and basic choose another (p, tau) "
                  f"({len(SPLITS)} splits x {max(1, s.reps)} rounds)", "<=", 0, value=different)
    return [*rows.values(), bits, largest, floor], [*ratios, agree]
