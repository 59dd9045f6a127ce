"""Rotated-digit dataset shift: accuracy, NLL, ECE and predictive entropy against the rotation
angle for a net without dropout, the same net with dropout scored by weight scaling, and by
MC dropout (Gal & Ghahramani 2016, fig. 4 rotates one digit; here the whole test split turns).

    python scripts/shift.py [--data-dir DIR] [--work DIR] [--out DIR] [--seeds 0,1,2]
                            [--epochs 20] [--samples 100] [--step 15] [--eval-only]

DIR holds the 10,000-digit real MNIST sample (gzipped IDX, default ../shared/data/mnist-sample
next to the checkout). It is carved into 8,000 training digits (1,000 of them held out for
validation) and 2,000 test digits. Both models train as ordinary `dropbench train -m` sweeps
under --work (run dirs like any other; the dropout sweep with eval.compare=true, so its
reliability diagram comes from `dropbench report`); then each run's best checkpoint scores
the test digits rotated by 0, step, ..., 180 degrees (bilinear, black fill). Writes
--out/results/shift_rotation.{csv,png}, --out/results/shift_reliability.png and the section
"## Classifiers: calibration and dataset shift" of --out/uncertainty.md (other sections of
that page are kept).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dropbench.data.mnist_sample import (  # noqa: E402
    DEFAULT_TRAIN,
    SAMPLE_VAL_SIZE,
    carve_mnist_sample,
    default_sample_dir,
)
from dropbench.engine.shift import load_run, shift_rows  # noqa: E402
from dropbench.report import tables  # noqa: E402
from dropbench.report.build import write_report  # noqa: E402
from dropbench.report.calibration_plots import shift_panels  # noqa: E402
from dropbench.report.collect import assign_groups, collect  # noqa: E402

HEADING = "## Classifiers: calibration and dataset shift"
MODEL = ["model=mlp", "model.hidden=[512,512]"]
SWEEPS = {  # sweep dir -> overrides; the MLP with Srivastava et al. 2014's MNIST rates
    "none": ["dropout=none"],
    "dropout": ["dropout=standard", "dropout.p=0.5", "dropout.p_input=0.2"],
}
NAMES = {("none", "scale"): "no dropout", ("dropout", "scale"): "dropout, weight scaling",
         ("dropout", "mc"): "MC dropout"}
TABLE_ANGLES = (0, 30, 60, 90, 120, 150, 180)


def train(work: Path, data_dir: Path, args) -> float:
    """Both sweeps through the CLI; returns the seconds they took."""
    start = time.perf_counter()
    common = ["dataset=mnist", f"data_dir={data_dir}", "dataset.download=false",
              f"dataset.val_size={SAMPLE_VAL_SIZE}", "trainer.threads=1",
              "trainer.progress=false", f"trainer.epochs={args.epochs}", f"seed={args.seeds}",
              *MODEL]
    mc = ["eval.compare=true", f"eval.mc_samples={args.samples}",
          f"eval.curve=[1,10,{args.samples}]"]
    for name, overrides in SWEEPS.items():
        extra = mc if name == "dropout" else []
        command = [sys.executable, "-m", "dropbench.cli", "train", "-m", *common, *overrides,
                   *extra, f"hydra.sweep.dir={work / name}", "~hydra.callbacks.report"]
        done = subprocess.run(command, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"},
                              capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"shift.py: the {name} sweep failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def evaluate(work: Path, angles: list[float], samples: int) -> tuple[pd.DataFrame, int]:
    """(one row per run, angle and prediction method; the number of test digits)."""
    rows, data = [], None
    for name in SWEEPS:
        for summary in sorted((work / name).glob("*/summary.json")):
            cfg, model, data = load_run(summary.parent, data)
            torch.manual_seed(cfg.seed)  # the MC masks: the same numbers on every rerun
            for row in shift_rows(model, data.test, angles, samples, mc=name != "none"):
                rows.append({"model": NAMES[(name, row["method"])], "seed": cfg.seed,
                             "run": str(summary.parent.relative_to(work)), **row})
    if data is None:
        sys.exit(f"shift.py: no finished runs under {work}; run without --eval-only first")
    return pd.DataFrame(rows), len(data.test)


def mean_std(values: pd.Series, scale: float, decimals: int) -> str:
    text = f"{values.mean() * scale:.{decimals}f}"
    return text + (f" ± {values.std() * scale:.{decimals}f}" if len(values) > 1 else "")


def table(rows: pd.DataFrame, models: list[str]) -> str:
    metrics = [("acc", "accuracy (%)", 100, 1), ("nll", "NLL", 1, 3), ("ece", "ECE (%)", 100, 1),
               ("entropy", "entropy (nats)", 1, 3)]
    lines = ["| angle | model | " + " | ".join(h for _, h, _, _ in metrics) + " |",
             "|---|---|" + "---|" * len(metrics)]
    for angle in TABLE_ANGLES:
        for model in models:
            sub = rows[(rows["angle"] == angle) & (rows["model"] == model)]
            if sub.empty:
                continue
            cells = [mean_std(sub[k], s, d) for k, _, s, d in metrics]
            lines.append(f"| {angle}° | {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def reading(rows: pd.DataFrame, models: list[str]) -> str:
    """The comparisons the table supports, in numbers: unrotated, and averaged over the
    angles of 45 degrees and more."""
    def mean(model, metric, far):
        sub = rows[(rows["model"] == model) & ((rows["angle"] >= 45) if far else
                                                (rows["angle"] == 0))]
        return sub[metric].mean()

    def listing(metric, far, scale, decimals, unit=""):
        return ", ".join(f"{mean(m, metric, far) * scale:.{decimals}f}{unit} ({m})"
                         for m in models)

    spread = max(abs(mean(a, "acc", True) - mean(b, "acc", True)) for a in models
                 for b in models) * 100
    return (f"Unrotated, the ECE is {listing('ece', False, 100, 1, ' %')} and the NLL "
            f"{listing('nll', False, 1, 3)}. Averaged over the angles from 45 to 180 degrees "
            f"the NLL is {listing('nll', True, 1, 2)}, the ECE "
            f"{listing('ece', True, 100, 1, ' %')} and the predictive entropy "
            f"{listing('entropy', True, 1, 2)} nats, while the three accuracies there differ "
            f"by at most {spread:.1f} percentage points: what changes between the predictions "
            f"under shift is how much probability they put on their wrong answers, not how "
            f"many digits they get right.")


def calibration_markdown(work: Path, samples: int) -> str:
    """The report's calibration table of the dropout runs (eval_compare, unrotated test)."""
    col = collect([work / "dropout"])
    table = tables.calibration_table(col.runs, assign_groups(col, []))
    table["configuration"] = f"dropout MLP (MC: T = {samples})"
    return tables.markdown(table)


def section(rows: pd.DataFrame, models: list[str], timing: dict, reliability: str,
            calibration: str) -> str:
    seeds = sorted(rows["seed"].unique())
    n_test = int(timing["n_test"])
    return f"""{HEADING}

Data: the 10,000-digit real MNIST sample (the official MNIST test split, not full MNIST),
carved into the first {DEFAULT_TRAIN:,} digits for training ({DEFAULT_TRAIN - SAMPLE_VAL_SIZE:,}
train + {SAMPLE_VAL_SIZE:,} validation) and the last {n_test:,} as test. Models: the MLP
784-512-512-10 (ReLU, SGD, the trainer's defaults) for {timing['epochs']} epochs, without dropout
and with dropout p = 0.5 on the hidden layers and 0.2 on the input (Srivastava et al. 2014's
MNIST rates), test scores at the best validation epoch; seeds {", ".join(map(str, seeds))}.
The MLP takes about a minute or less per run on one shared core, so three seeds of both
models train in minutes; LeNet costs several times more per epoch and would not change what
the study asks (how the predictive distribution behaves as the inputs leave the training
distribution).

Generated by `{timing["command"]}` in {timing["wall_s"]:.0f} s in all (training
{timing["train_s"]:.0f} s, rotation scoring {timing["eval_s"]:.0f} s; {timing["cores"]} cores
shared with other jobs, load average {timing["load_average"]}). Run again, it rewrites this
section and docs/results/shift_* (`--out DIR --work DIR` write elsewhere).

### Calibration on the unrotated test digits

Metrics (`dropbench/engine/calibration.py`): NLL is the mean negative log-probability of the
true class, from log-probabilities, so it stays finite; the Brier score sums (p_c - onehot_c)^2
over the 10 classes (Brier 1950; some papers divide by the number of classes); ECE bins the
largest probability into 15 equal-width bins (0, 1/15], ..., (14/15, 1] (Guo et al. 2017).
`eval.compare=true` writes them for the weight-scaled and the MC predictive to summary.json
(`eval_compare.calibration`), and `dropbench report` draws the reliability diagram:

![Reliability diagram of the dropout MLP, weight scaling and MC dropout]({reliability})

The dropout MLP's runs, seeds pooled ({len(rows["seed"].unique())} x {n_test:,} test
predictions per panel). A bar above the diagonal is an underconfident bin (accuracy above
the mean confidence), below it an overconfident one; the lower panels show how few examples
the low-confidence bins hold. The same runs' scores, as `dropbench report` tabulates them
(mean ± std over seeds; the MC masks here are the training run's own draw, so they differ a
little from the 0° rows below):

{calibration}

### Rotated test digits

Every test digit rotated anticlockwise by the same angle (bilinear, black fill), for
{len(sorted(rows["angle"].unique()))} angles from 0 to 180 degrees. Gal & Ghahramani 2016
(fig. 4) rotate a single digit "1" and look at the softmax samples; this is the whole test
split and the summary metrics. MC dropout averages the probabilities of T = {timing['samples']}
stochastic passes; "no dropout" has no stochastic pass to average. Lines: mean over the seeds,
shaded: their range. Table: mean ± sample std over seeds, every 30 degrees (all angles in
`results/shift_rotation.csv`, one row per run, angle and prediction method).

![Accuracy, NLL, ECE and predictive entropy against the rotation angle](results/shift_rotation.png)

{table(rows, models)}

{reading(rows, models)}
"""


def write_section(page: Path, text: str) -> None:
    """Replace (or add) this study's section of the page, keeping every other section."""
    old = page.read_text() if page.exists() else "# Uncertainty\n"
    if HEADING in old:
        before, rest = old.split(HEADING, 1)
        after = rest[rest.find("\n## "):] if "\n## " in rest else ""
        new = before + text.rstrip() + "\n" + after
    else:
        new = old.rstrip() + "\n\n" + text
    page.write_text(new)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=default_sample_dir(REPO),
                        help="folder with the 10k-digit real MNIST sample (gzipped IDX)")
    parser.add_argument("--work", type=Path, default=REPO / "outputs" / "shift",
                        help="where the run dirs go")
    parser.add_argument("--out", type=Path, default=REPO / "docs",
                        help="where uncertainty.md's section and results/shift_* go (default: "
                        "the repository's docs/, whose section they replace)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--samples", type=int, default=100, help="MC passes T")
    parser.add_argument("--step", type=float, default=15.0, help="degrees between angles")
    parser.add_argument("--eval-only", action="store_true",
                        help="score the runs already in --work, training nothing")
    parser.add_argument("--page-only", action="store_true",
                        help="redraw the figures and the page from the scores and timing "
                             "already in --work, scoring nothing")
    args = parser.parse_args(argv)
    if args.page_only:
        if not (args.work / "timing.json").is_file():
            parser.exit(2, f"shift.py: error: no timing.json in {args.work}; run the study "
                           f"without --page-only first\n")
        timing = json.loads((args.work / "timing.json").read_text())
        write_outputs(pd.read_csv(args.work / "shift_rotation.csv"), timing, args)
        return
    if not (args.data_dir / "t10k-images-idx3-ubyte.gz").is_file():
        parser.exit(2, f"shift.py: error: no MNIST sample in {args.data_dir}; pass --data-dir "
                       f"with the gzipped MNIST test-split IDX files\n")
    torch.set_num_threads(1)
    start = time.perf_counter()
    train_s = 0.0
    if not args.eval_only:
        data_dir = carve_mnist_sample(args.data_dir, args.work / "data", DEFAULT_TRAIN)
        train_s = train(args.work, data_dir, args)
    angles = [round(i * args.step, 6) for i in range(int(180 // args.step) + 1)]
    eval_start = time.perf_counter()
    rows, n_test = evaluate(args.work, angles, args.samples)
    eval_s = time.perf_counter() - eval_start
    rows.to_csv(args.work / "shift_rotation.csv", index=False)
    command = "python scripts/shift.py" + "".join(
        f" --{k.replace('_', '-')} {v}" for k, v in (("seeds", args.seeds),
                                                     ("epochs", args.epochs),
                                                     ("samples", args.samples),
                                                     ("step", f"{args.step:g}")))
    timing = {"command": command, "wall_s": time.perf_counter() - start, "train_s": train_s,
              "eval_s": eval_s, "cores": os.cpu_count(),
              "load_average": round(os.getloadavg()[0], 1), "n_test": n_test,
              "epochs": args.epochs, "samples": args.samples}
    (args.work / "timing.json").write_text(json.dumps(timing))
    write_outputs(rows, timing, args)


def write_outputs(rows: pd.DataFrame, timing: dict, args) -> None:
    """The CSV, both figures and the page section, from the scores and the timing."""
    results = args.out / "results"
    results.mkdir(parents=True, exist_ok=True)
    rows.to_csv(results / "shift_rotation.csv", index=False)
    models = list(NAMES.values())
    seeds = rows["seed"].nunique()
    fig = shift_panels(rows, models, f"Rotated test digits (real 10k MNIST sample): mean over "
                                     f"{seeds} seed{'s' if seeds > 1 else ''}, range shaded; "
                                     f"MC: T = {timing['samples']}")
    fig.savefig(results / "shift_rotation.png", dpi=150)
    report = write_report([args.work / "dropout"], out=args.work / "report")
    (results / "shift_reliability.png").write_bytes((report / "reliability.png").read_bytes())
    write_section(args.out / "uncertainty.md",
                  section(rows, models, timing, "results/shift_reliability.png",
                          calibration_markdown(args.work, timing["samples"])))
    print(f"wrote {args.out / 'uncertainty.md'} and {results}/shift_*; {timing['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
