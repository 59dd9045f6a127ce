"""`dropbench bench` / `python scripts/bench.py`: dropbench's real training loop against the
plain PyTorch loops a user would write, and against the matrix-multiply limit, in one process,
on synthetic data of the real shapes or on the real data a case names. Prints a table and
writes bench.json.

Cases (docs/benchmarks.md has the measured output and the targets):
  startup  what the CLI costs before and after any training, next to `import torch`
  mlp      MNIST MLP 784-1024-1024-10: dropbench vs examples/mnist vs a naive loop vs matmuls
  schemes  the MLP's step time with every registered dense scheme vs. no dropout
  cnn      the CIFAR-10 conv net (model=alexnet): none, standard, spatial, dropblock
  lm       LSTM LMs (Zaremba small/medium shapes) vs word_language_model and an LSTMCell loop
  sweep    12-job MLP sweep: batched launcher vs basic launcher, and the training alone
  sweep_cnn  the same for a 12-job LeNet sweep on the digits
  members  one epoch of 1, 16 and 256 small MLPs on the digits: stacked vs one after another
  transformer  a ViT epoch on the MNIST sample and a Transformer LM on PTB-sized windows vs
           the same models in plain PyTorch (nn.TransformerEncoderLayer)
  uci      the UCI protocol on real yacht data (--data-dir), 2 splits: batched launcher vs
           basic launcher vs a plain loop, the largest stack's peak RSS, and the time to draw
           the trainings' dropout bits alone
Peak RSS (and peak CUDA memory on a GPU) is recorded for every variant.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from dropbench.bench import harness

CASES = ["startup", "mlp", "schemes", "cnn", "lm", "sweep", "sweep_cnn", "members", "transformer",
         "uci"]


def case_functions():
    from dropbench.bench.lm import lm_case
    from dropbench.bench.members import members_case
    from dropbench.bench.startup import startup_case
    from dropbench.bench.sweep import sweep_case, sweep_cnn_case
    from dropbench.bench.transformer import transformer_case
    from dropbench.bench.uci import uci_case
    from dropbench.bench.vision import cnn_case, mlp_case, scheme_case

    return {"startup": startup_case, "mlp": mlp_case, "schemes": scheme_case, "cnn": cnn_case,
            "lm": lm_case, "sweep": sweep_case, "sweep_cnn": sweep_cnn_case,
            "members": members_case,
            "transformer": transformer_case, "uci": uci_case}


def run_bench(cases, settings) -> dict:
    """Run the named cases; returns the bench.json document."""
    from dropbench.bench.harness import Check

    machine = harness.machine_info(settings.device)
    start = time.perf_counter()
    rows, targets = [], []
    functions = case_functions()
    for name in cases:
        case_rows, case_targets = functions[name](settings)
        rows += case_rows
        targets += case_targets
        print_rows(case_rows, flush=True)
    by_key = {r.key: r for r in rows}
    targets = [t.compute(by_key) for t in targets]
    ratios = [t for t in targets if not isinstance(t, Check)]
    checks = [t for t in targets if isinstance(t, Check)]
    machine["load_average_1min_end"] = harness.load_average()
    return {
        "machine": machine,
        "settings": {"cases": list(cases), "reps": settings.reps, "warmup": settings.warmup,
                     "scale": settings.scale, "amp": settings.amp, "compile": settings.compile},
        "wall_s": round(time.perf_counter() - start, 1),
        "rows": [r.to_dict() for r in rows],
        "ratios": [vars(r) for r in ratios],
        "checks": [vars(c) for c in checks],
    }


def print_rows(rows, flush=False) -> None:
    for r in rows:
        if not r.available:
            print(f"{r.case:<8} {r.name:<48} {r.note}", flush=flush)
            continue
        cuda = f" {r.peak_cuda_mb:>8.0f}" if r.peak_cuda_mb is not None else ""
        rss = "-" if r.peak_rss_mb is None else f"{r.peak_rss_mb:.0f}"  # a subprocess's: not ours
        print(f"{r.case:<8} {r.name:<48} {r.work:>8} {min(r.seconds):>8.3f} {r.median:>8.3f} "
              f"{max(r.seconds):>8.3f} {shown_rate(r.rate):>11} {r.unit:<7} {rss:>7}{cuda}",
              flush=flush)


def print_ratios(ratios: list[dict]) -> None:
    print(f"\n{'ratio / check':<66} {'value':>7}  target   met")
    for r in ratios:
        value = "n/a" if r["value"] is None else f"{r['value']:.3g}"
        target = f"{r['op']} {r['target']}" if r["op"] else "-"
        met = {True: "yes", False: "NO", None: ""}[r["met"]]
        print(f"{r['label']:<66} {value:>7}  {target:<8} {met}")


def markdown(result: dict) -> str:
    """The rows and ratios of a bench.json document as two markdown tables."""
    cuda = result["machine"]["device"].startswith("cuda")
    lines = ["| case | variant | work | min s | median s | max s | rate /s | peak RSS MB"
             + (" | peak CUDA MB |" if cuda else " |"),
             "|---|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if cuda else "")]
    for r in result["rows"]:
        if not r["available"]:
            lines.append(f"| {r['case']} | {r['name']} | {r['note']} | | | | | |"
                         + (" |" if cuda else ""))
            continue
        lines.append(f"| {r['case']} | {r['name']} | {r['work']:,} {r['unit']} | "
                     f"{r['min_s']:.3f} | {r['median_s']:.3f} | {r['max_s']:.3f} | "
                     f"{shown_rate(r['rate'])} | "
                     + ("-" if r["peak_rss_mb"] is None else f"{r['peak_rss_mb']:,.0f}") + " |"
                     + (f" {r['peak_cuda_mb']:,.0f} |" if cuda else ""))
    lines += ["", "| ratio (from the medians) or check | value | target | met |",
              "|---|---:|---|---|"]
    for r in result["ratios"] + result.get("checks", []):
        value = "n/a" if r["value"] is None else f"{r['value']:.3g}"
        target = f"{r['op']} {r['target']}" if r["op"] else ""
        met = {True: "yes", False: "**no**", None: ""}[r["met"]]
        lines.append(f"| {r['label']} | {value} | {target} | {met} |")
    return "\n".join(lines) + "\n"


def shown_rate(rate: float) -> str:
    """Thousands separated; three significant digits below 100 (trainings/s of the uci case)."""
    return f"{rate:,.0f}" if rate >= 100 else f"{rate:.3g}"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dropbench bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", nargs="+", default=CASES, choices=CASES)
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--reps", type=int, default=3, help="timed repetitions per variant")
    p.add_argument("--warmup", type=int, default=1, help="untimed short passes per variant")
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiply every case's work (e.g. 0.1 for a quick look)")
    p.add_argument("--amp", choices=["off", "bf16", "fp16"], default=None,
                   help="mixed precision on CUDA (default bf16 on cuda, off on cpu)")
    p.add_argument("--compile", action="store_true", help="torch.compile dropbench's model "
                   "(CUDA only; the references stay eager)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads "
                   "(default: one per core that other processes leave free, as `dropbench "
                   "train`)")
    p.add_argument("--data-dir", type=Path, default=None, help="a data_dir holding real data "
                   "a case needs (uci: uci/yacht/data/, as `dropbench data download uci` "
                   "writes it); default: dropbench's data_dir")
    p.add_argument("--out", default="bench.json", help="where to write the JSON results")
    p.add_argument("--markdown", help="also write the tables as markdown to this file")
    return p


def main(argv: list[str] | None = None) -> dict:
    from dropbench.bench.common import Settings
    from dropbench.data.manage import default_data_dir
    from dropbench.engine import pick_device
    from dropbench.engine.accel import default_threads, keep_freed_memory

    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads or default_threads())
    device = pick_device(args.device)
    # dropbench's Run does this on the CPU; doing it first gives the reference loops the same
    # allocator, so the comparison is between the loops and not glibc settings.
    keep_freed_memory()
    amp = args.amp or ("bf16" if device.type == "cuda" else "off")
    header = (f"{'case':<8} {'variant':<48} {'work':>8} {'min s':>8} {'median s':>8} "
              f"{'max s':>8} {'rate/s':>11} {'unit':<7} {'RSS MB':>7}")
    print(f"dropbench bench: {harness.cpu_model()}, {torch.get_num_threads()} threads, torch "
          f"{torch.__version__}, device {device}, amp={amp}, load average "
          f"{harness.load_average()}\n{header}" + (f" {'CUDA MB':>8}" if device.type == "cuda"
                                                    else ""), flush=True)
    with tempfile.TemporaryDirectory(prefix="dropbench-bench-") as tmp:
        settings = Settings(device, Path(tmp), args.reps, args.warmup, args.scale, amp,
                            args.compile, (args.data_dir or default_data_dir()).resolve())
        result = run_bench(args.cases, settings)
    print_ratios(result["ratios"] + result["checks"])
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    if args.markdown:
        Path(args.markdown).write_text(markdown(result))
    print(f"\nwrote {args.out} ({result['wall_s']} s)")
    return result
