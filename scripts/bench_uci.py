"""The UCI protocol batched against one training at a time, side by side in one script run.

    OMP_NUM_THREADS=1 python scripts/bench_uci.py --data-dir /work/shared/data --splits 0,1

1. batched: `dropbench train -m +experiment=gal_uci` (the batched launcher, the default):
   every split's 12 selection jobs in one stack, then the refits in one stack;
2. basic: the same command with hydra/launcher=basic (one training after another, in one
   process), unless --skip-basic;
3. plain: a plain PyTorch loop training one model of the protocol's (the same net, Adam,
   batch 128, the weight prior, the final 10,000-pass MC test) --plain times on the
   selection-sized and the refit-sized data of the first split, scaled to the protocol's
   trainings (said so in the output).
Each CLI run is a child process; its wall time and peak RSS (from wait4) are reported.
--rss-splits N adds a short run (--rss-epochs) over N splits, whose first stack holds all
N x 12 selection members, for the peak RSS of the largest stack.
"""

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]


def run_cli(args: list[str], log: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of `python -m dropbench.cli` with args."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "dropbench.cli", *args], stdout=out,
                                stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(args)} failed: see {log}")
    return wall, usage.ru_maxrss / 1024


def protocol_args(data_dir: str, splits: str, epochs: int, sweep: Path, launcher: str):
    return ["train", "-m", "+experiment=gal_uci", "dataset.name=yacht", f"data_dir={data_dir}",
            f"protocol.splits=[{splits}]", f"trainer.epochs={epochs}", "trainer.threads=1",
            f"hydra.sweep.dir={sweep}", f"hydra/launcher={launcher}", "~hydra.callbacks.report"]


def read_rows(sweep: Path) -> list[dict]:
    with open(sweep / "protocol.csv") as f:
        return list(csv.DictReader(f))


def largest_difference(a: Path, b: Path) -> dict:
    """The largest relative difference per score between two protocol sweeps: protocol.csv
    and every job's summary.json."""
    worst: dict[str, float] = {}

    def note(key, x, y):
        if x is None or y is None:
            return
        rel = abs(x - y) / max(abs(y), 1e-12)
        worst[key] = max(worst.get(key, 0.0), rel)

    for ra, rb in zip(read_rows(a), read_rows(b), strict=True):
        for key in ("p", "tau", "test_rmse", "test_mc_rmse", "test_ll", "val_ll"):
            note(f"protocol.csv {key}", float(ra[key]), float(rb[key]))
    for path in b.glob("split*/**/summary.json"):
        sb = json.loads(path.read_text())
        sa = json.loads((a / path.relative_to(b)).read_text())
        for key in ("test_rmse", "test_mc_rmse", "test_mc_ll", "val_mc_ll", "best_val_loss"):
            note(f"summary {key}", sa.get(key), sb.get(key))
    return worst


def plain_training(data_dir: Path, split: int, validation: bool, epochs: int, p: float,
                   tau: float) -> float:
    """Seconds of one plain-loop training of the protocol's net on yacht `split`."""
    from dropbench.data.uci import read_split, standardiser
    from dropbench.models.prior import l2_strength

    s = read_split(data_dir / "uci" / "yacht" / "data", split, validation)
    xm, xs = standardiser(s.x_train)
    ym, ys = standardiser(s.y_train)
    x = torch.tensor((s.x_train - xm) / xs, dtype=torch.float32)
    y = torch.tensor((s.y_train - ym) / ys, dtype=torch.float32)
    xt = torch.tensor((s.x_test - xm) / xs, dtype=torch.float32)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Dropout(p), nn.Linear(x.shape[1], 50), nn.ReLU(), nn.Dropout(p),
                        nn.Linear(50, 1))
    reg = l2_strength(0.01, p, len(x), tau)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    start = time.perf_counter()
    net.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x)).split(128):
            loss = nn.functional.mse_loss(net(x[idx]).squeeze(-1), y[idx])
            loss = loss + reg * (net[1].weight.pow(2).sum() + net[4].weight.pow(2).sum())
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():  # the MC test: 10,000 stochastic passes, many per forward
        for _ in range(10000 * len(xt) // 65536 + 1):
            net(xt.repeat(min(10000, 65536 // len(xt)), 1))
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="/work/shared/data")
    ap.add_argument("--splits", default="0,1")
    ap.add_argument("--epochs", type=int, default=4000)
    ap.add_argument("--out", default="/tmp/bench_uci")
    ap.add_argument("--skip-basic", action="store_true")
    ap.add_argument("--plain", type=int, default=1, help="plain-loop trainings of each size")
    ap.add_argument("--rss-splits", type=int, default=0)
    ap.add_argument("--rss-epochs", type=int, default=40)
    a = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    n_splits = len(a.splits.split(","))
    n_select, n_refit = 12 * n_splits, n_splits
    results = {"data": f"{a.data_dir}/uci/yacht", "splits": a.splits, "epochs": a.epochs,
               "trainings": n_select + n_refit, "cpu": os.cpu_count()}
    sweeps = {}
    for launcher in ("batched_wide",) + (() if a.skip_basic else ("basic",)):
        sweep = out / launcher
        wall, rss = run_cli(protocol_args(a.data_dir, a.splits, a.epochs, sweep, launcher),
                            out / f"{launcher}.log")
        sweeps[launcher] = sweep
        results[launcher] = {"wall_s": round(wall, 1), "peak_rss_mib": round(rss)}
        print(f"{launcher}: {wall:.1f} s, peak RSS {rss:.0f} MiB", flush=True)
    if "basic" in sweeps:
        results["speedup_vs_basic"] = round(results["basic"]["wall_s"]
                                            / results["batched_wide"]["wall_s"], 1)
        results["largest_relative_difference"] = largest_difference(sweeps["batched_wide"],
                                                                    sweeps["basic"])
    split0 = int(a.splits.split(",")[0])
    select = [plain_training(Path(a.data_dir), split0, True, a.epochs, 0.01, 0.5)
              for _ in range(a.plain)]
    refit = [plain_training(Path(a.data_dir), split0, False, a.epochs, 0.01, 0.5)
             for _ in range(a.plain)]
    plain = n_select * min(select) + n_refit * min(refit)
    results["plain_loop"] = {"select_s": round(min(select), 2), "refit_s": round(min(refit), 2),
                             "scaled_total_s": round(plain, 1),
                             "how": f"best of {a.plain} timed trainings of each size, x "
                                    f"{n_select} selection + {n_refit} refit trainings"}
    results["speedup_vs_plain"] = round(plain / results["batched_wide"]["wall_s"], 1)
    print(f"plain loop: {min(select):.1f} s per selection training, {min(refit):.1f} s per "
          f"refit, scaled to {plain:.0f} s", flush=True)
    if a.rss_splits:
        splits = ",".join(str(k) for k in range(a.rss_splits))
        wall, rss = run_cli(protocol_args(a.data_dir, splits, a.rss_epochs, out / "rss",
                                          "batched_wide"), out / "rss.log")
        results["largest_stack"] = {"members": 12 * a.rss_splits, "epochs": a.rss_epochs,
                                    "wall_s": round(wall, 1), "peak_rss_mib": round(rss)}
        print(f"{12 * a.rss_splits} members ({a.rss_epochs} epochs): peak RSS {rss:.0f} MiB")
    (out / "bench_uci.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))
    if not all(math.isfinite(v) for v in results.get("largest_relative_difference", {}).values()):
        sys.exit("a score differs by a non-finite amount")


if __name__ == "__main__":
    main()
