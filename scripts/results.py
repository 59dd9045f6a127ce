"""Regenerate docs/results.md: dropout studies on real handwritten digits.

    python scripts/results.py [--data-dir DIR] [--quick] [--work DIR] [--out DIR] [--jobs N]

DIR holds the 10,000-digit real MNIST sample (the official MNIST test split as gzipped IDX
files; default ../shared/data/mnist-sample next to the checkout). It is carved into 8,000
training digits (1,000 of them held out for validation) and 2,000 test digits, every study
runs as ordinary `dropbench train -m` sweeps under --work, `dropbench report` draws the figures,
and the page with its tables and figures is written to --out (default docs/). `--quick` runs a
reduced grid (one seed, fewer epochs) in under ten minutes on two idle cores.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from results_page import replace_section, write_page  # noqa: E402  (scripts/results_page.py)

from dropbench.data.mnist_sample import (  # noqa: E402
    DEFAULT_TRAIN,
    SAMPLE_VAL_SIZE,
    carve_mnist_sample,
    default_sample_dir,
)


@dataclass
class Sweep:
    label: str
    overrides: list[str]  # Hydra overrides; comma lists make a grid as in `dropbench train -m`


@dataclass
class Study:
    name: str
    title: str
    sweeps: list[Sweep]
    by: list[str]  # config keys that tell the configurations apart in the tables
    figures: list[str]  # report figures to show (file stems of `dropbench report`)
    text: str  # what the study asks and how the paper's figure compares
    quick_epochs: int = 10  # --quick trains this many epochs (else the trainer's default)


DROPOUT = ["dropout=standard", "dropout.p=0.5", "dropout.p_input=0.2"]
VIT = ["model=vit", "model.patch=7", "optim=adamw"]


def studies(quick: bool) -> list[Study]:
    rates = "0,0.2,0.5,0.7" if quick else "0,0.1,0.2,0.3,0.5,0.7"
    subsets = "500,2000,7000" if quick else "250,500,1000,2000,4000,7000"
    curve = "eval.curve=[1,2,5,10,20]" if quick else "eval.curve=[1,2,5,10,20,50,100]"
    all_studies = [
        Study("rate_sweep", "MLP: test error against the dropout rate",
              [Sweep("p", [f"dropout.p={rates}"])], ["dropout.p"],
              ["rate_sweep", "gap_vs_rate", "overfitting_curves"],
              "The default MLP (2 x 512 ReLU) with dropout rate p after each hidden layer and "
              "none on the input. Srivastava et al. 2014 (figure 9) find a flat optimum for "
              "p between about 0.4 and 0.8 on full MNIST with much larger nets trained far "
              "longer; the shape (too little dropout overfits, too much underfits) is the "
              "comparable part, not the error levels."),
        Study("schemes", "MLP: dropout schemes side by side", [
            Sweep("none", ["dropout=none"]),
            Sweep("standard", DROPOUT),
            Sweep("classic", ["dropout=classic", "dropout.p=0.5", "dropout.p_input=0.2"]),
            Sweep("gaussian", ["dropout=gaussian", "dropout.p=0.5", "dropout.p_input=0.2"]),
            Sweep("dropconnect", ["dropout=dropconnect"]),
            Sweep("concrete", ["dropout=concrete"]),
            Sweep("alpha", ["dropout=alpha", "model.activation=selu"]),
        ], ["dropout.name", "model.activation"], ["by_configuration", "overfitting_curves"],
            "Every unit scheme at its configured default rates (standard, classic and "
            "gaussian at 0.5 hidden / 0.2 input; alpha dropout with SELU units, as it is meant "
            "for). Each scheme's paper used other nets, data and budgets; only the ranking "
            "here is evidence, and only for this small-data setting."),
        Study("lenet", "LeNet: where the dropout goes", [
            Sweep("none", ["model=lenet", "dropout=none"]),
            Sweep("fc", ["model=lenet", "dropout.where=fc"]),
            Sweep("all", ["model=lenet"]),
            Sweep("spatial", ["model=lenet", "dropout=spatial"]),
            Sweep("dropblock", ["model=lenet", "dropout=dropblock"]),
        ], ["dropout.name", "dropout.where"], ["by_configuration", "overfitting_curves"],
            "LeNet-5 style net (6 and 16 5x5 filters, 120 and 84 hidden units) with its "
            "default per-place rates (`all`), dropout on the fully connected layers only "
            "(`fc`), and the two structured schemes on the conv feature maps. LeCun et al. "
            "1998 report 0.95 % error for LeNet-5 trained on 60,000 digits; not comparable "
            "with 7,000."),
        Study("regularisers", "Dropout against other regularisers", [
            Sweep("none", ["dropout=none"]),
            Sweep("l2", ["dropout=none", "optim.weight_decay=5e-4"]),
            Sweep("l1", ["dropout=none", "optim.l1=1e-5"]),
            Sweep("max_norm", ["dropout=none", "optim.max_norm=1"]),
            Sweep("early_stopping", ["dropout=none", "trainer.patience=3"]),
            Sweep("dropout", DROPOUT),
            Sweep("dropout_l2", [*DROPOUT, "optim.weight_decay=5e-4"]),
            Sweep("dropout_max_norm", [*DROPOUT, "optim.max_norm=1"]),
        ], ["dropout.name", "optim.weight_decay", "optim.l1", "optim.max_norm",
            "trainer.patience"], ["by_configuration", "overfitting_curves"],
            "The shape of Srivastava et al. 2014, table 9 (their MNIST errors: L2 1.62 %, "
            "L2 + L1 1.60 %, max-norm 1.35 %, dropout + L2 1.25 %, dropout + max-norm "
            "1.05 %), on the default MLP. The penalty strengths are round values, not tuned "
            "per method as in the paper. Max-norm uses c = 1, not the paper's c = 3: at "
            "this learning rate (0.01) no incoming weight vector grows past a norm of about "
            "1.7-1.8 in 20 epochs (the trainer's warning on a c = 3 run), so c = 3 never "
            "binds and its rows would repeat those without it (the paper pairs c = 3 with "
            "learning rates that let the weights grow); the count below says how often c = 1 "
            "acted. Early "
            "stopping stops 3 epochs after the best "
            "validation loss. The test error is always taken at the best validation epoch, "
            "so every row already benefits from checkpoint selection."),
        Study("mc", "Monte-Carlo dropout against weight scaling",
              [Sweep("mc", [*DROPOUT, "eval.compare=true", curve])], ["dropout.name"],
              ["mc_samples"],
              "The test error of the average of T stochastic passes against T, next to the "
              "one deterministic weight-scaled pass, as in Srivastava et al. 2014, figure 11 "
              "(there: MC reaches weight scaling at about T = 50 on full MNIST)."),
        Study("small_data", "Test error against the training set size", [
            Sweep("none", ["dropout=none", f"dataset.train_subset={subsets}"]),
            Sweep("dropout", [*DROPOUT, f"dataset.train_subset={subsets}"]),
        ], ["dataset.train_subset", "dropout.name"], [],
            "The default MLP with and without dropout trained on the first N of the 7,000 "
            "training digits, validation and test unchanged; the shape of Srivastava et al. "
            "2014, figure 10 (there: full MNIST subsets, nets sized differently)."),
        Study("transformer", "A small ViT: dropout after 2017", [
            Sweep("none", [*VIT, "dropout=none"]),
            Sweep("dropout", [*VIT, "dropout=standard"]),
            Sweep("early", [*VIT, "dropout=standard", "dropout.schedule=early"]),
            Sweep("droppath", [*VIT, "dropout=droppath"]),
            Sweep("rdrop", [*VIT, "dropout=standard", "objective=rdrop"]),
        ], ["dropout.name", "dropout.schedule", "objective.name"],
            ["by_configuration", "overfitting_curves"],
            "A Vision Transformer (`model=vit model.patch=7`: 16 patches of 7x7 pixels, its "
            "default width, depth and heads, docs/transformer.md) trained with AdamW "
            "(`optim=adamw`, its family default lr 0.001 and clipping) for 20 epochs: no "
            "dropout; dropout 0.1 on the embeddings, the attention probabilities and each "
            "residual branch's output (Vaswani et al. 2017's placement and rate); the same "
            "switched off after the first quarter of training (early dropout, Liu et al. "
            "2023, per step); DropPath alone (stochastic depth, last block 0.1, rising "
            "linearly with depth; Huang et al. 2016); and R-Drop (Liang et al. 2021, alpha "
            "1) on the 0.1 dropout. Liu et al. report early dropout helping ViTs that "
            "underfit ImageNet; here a tiny ViT sees 7,000 digits, where it may as well "
            "overfit, so only what these runs show counts. Seen here: R-Drop has the lowest "
            "mean test error and the smallest spread over seeds, then dropout 0.1; DropPath "
            "alone is close to no dropout; early dropout, off after 5 of the 20 epochs, ends "
            "worst, with the earliest best epoch: this ViT overfits the 7,000 digits (train-"
            "eval above validation by 4-6 pp), the case for which Liu et al. propose late, not "
            "early, dropout. With three seeds and no dropout's own spread, no configuration "
            "differs from no dropout beyond the noise (last column: paired by seed, Holm "
            "corrected)."),
    ]
    if quick:
        all_studies[2].quick_epochs = 6  # LeNet: a conv net costs ten MLPs per epoch
        regs = all_studies[3]
        regs.sweeps = [s for s in regs.sweeps if s.label in
                       ("none", "l2", "max_norm", "early_stopping", "dropout",
                        "dropout_max_norm")]
    return all_studies


def run_sweep(sweep_dir: Path, overrides: list[str], common: list[str]) -> tuple[str, float, str]:
    """One `dropbench train -m` in a subprocess; (dir, seconds, stderr tail when it failed)."""
    start = time.perf_counter()
    command = [sys.executable, "-m", "dropbench.cli", "train", "-m", *common, *overrides,
               f"hydra.sweep.dir={sweep_dir}", "~hydra.callbacks.report"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    failed = "" if done.returncode == 0 else done.stderr.strip()[-500:]
    return str(sweep_dir), time.perf_counter() - start, failed


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=default_sample_dir(REPO),
                        help="folder with the 10k-digit real MNIST sample (gzipped IDX)")
    parser.add_argument("--quick", action="store_true", help="one seed, reduced grids")
    parser.add_argument("--work", type=Path, default=REPO / "outputs" / "results",
                        help="where the runs go (replaced)")
    parser.add_argument("--out", type=Path, default=REPO / "docs",
                        help="results.md and results/*.png are written here (default: the "
                        "repository's docs/, whose page they replace)")
    parser.add_argument("--jobs", type=int, default=2, help="sweeps run at once (one thread "
                        "each)")
    parser.add_argument("--page-only", action="store_true", help="rebuild the page from the "
                        "runs already in --work, training nothing")
    parser.add_argument("--only", help="run this one study and replace its section of the "
                        "page (the others stay as they are)")
    args = parser.parse_args(argv)
    if args.page_only and args.only:
        study = next(s for s in studies(args.quick) if s.name == args.only)
        timing = json.loads((args.work / args.only / "timing.json").read_text())
        print(replace_section(study, args.work, args.out, timing=timing))
        return
    if args.page_only:
        timing = json.loads((args.work / "timing.json").read_text())
        print(write_page(studies(args.quick), args.work, args.out, command=page_command(args),
                         quick=args.quick, timing=timing))
        return
    if not (args.data_dir / "t10k-images-idx3-ubyte.gz").is_file():
        parser.exit(2, f"results.py: error: no MNIST sample in {args.data_dir}; pass "
                       f"--data-dir with the gzipped MNIST test-split IDX files\n")
    plan = studies(args.quick)
    if args.only:
        plan = [s for s in plan if s.name == args.only]
        if not plan:
            parser.exit(2, f"results.py: error: no study {args.only!r}; one of "
                           f"{', '.join(s.name for s in studies(args.quick))}\n")
        shutil.rmtree(args.work / args.only, ignore_errors=True)
    else:
        shutil.rmtree(args.work, ignore_errors=True)
    data_dir = carve_mnist_sample(args.data_dir, args.work / "data", DEFAULT_TRAIN)
    seeds = "0" if args.quick else "0,1,2"
    common = ["dataset=mnist", f"data_dir={data_dir}", "dataset.download=false",
              f"dataset.val_size={SAMPLE_VAL_SIZE}", "trainer.threads=1",
              "trainer.progress=false", f"seed={seeds}"]
    jobs = [(args.work / s.name / sw.label,
             [*sw.overrides, *([f"trainer.epochs={s.quick_epochs}"] if args.quick else [])])
            for s in plan for sw in s.sweeps]
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        outcomes = list(pool.map(lambda job: run_sweep(job[0], job[1], common), jobs))
    for sweep_dir, seconds, failed in outcomes:
        print(f"{seconds:7.1f} s  {sweep_dir}{'  FAILED: ' + failed if failed else ''}")
    timing = {"wall_s": round(time.perf_counter() - start, 1), "cores": os.cpu_count(),
              "load_average": round(os.getloadavg()[0], 1)}  # a shared machine runs slower
    if args.only:
        (args.work / args.only / "timing.json").write_text(json.dumps(timing))
        print(replace_section(plan[0], args.work, args.out, timing=timing))
        return
    (args.work / "timing.json").write_text(json.dumps(timing))
    print(write_page(plan, args.work, args.out, command=page_command(args), quick=args.quick,
                     timing=timing))


def page_command(args) -> str:
    return "python scripts/results.py" + (" --quick" if args.quick else "")


if __name__ == "__main__":
    main()
