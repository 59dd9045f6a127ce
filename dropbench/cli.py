"""`dropbench train | list | data | --version`.

`train` hands its arguments to a Hydra app (multirun, --cfg, --help and overrides all work as in
any Hydra app); the other commands are plain argparse. Every error ends as one line on stderr
with a non-zero exit: 2 for one the user can fix (the line names the fix), 1 for an unexpected
one, whose traceback `dropbench --debug ...` (or, for train, the user's HYDRA_FULL_ERROR=1)
shows.
"""

import argparse
import os
import sys
from pathlib import Path

from dropbench import __version__, jobdir
from dropbench.errors import DropbenchError, die
from dropbench.groups import GROUPS
from dropbench.user_errors import user_error

# Sweep job dirs are named by a resolver (conf/config.yaml, hydra.sweep.subdir). Parallel
# launchers resolve it in their workers, which import this module to unpickle _train_task.
jobdir.register()

# --- train -------------------------------------------------------------------------------
# Where the last job wrote (a run dir, or a sweep's dir), for the line `train` ends with. A
# parallel launcher's jobs run in worker processes and leave it unset.
OUTPUT: dict[str, str] = {}
DEBUG = False  # --debug or the user's HYDRA_FULL_ERROR=1: tracebacks of unexpected errors


def _train_task(cfg):
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import open_dict

    from dropbench.engine import train
    from dropbench.rundir import objective

    hc = HydraConfig.get()
    if hc.mode == RunMode.MULTIRUN:
        OUTPUT["sweep dir"] = str(Path(hc.sweep.dir).absolute())  # as `run dir`: absolute
    else:
        OUTPUT["run dir"] = str(hc.runtime.output_dir)
    if cfg.trainer.threads is None:
        with open_dict(cfg):
            cfg.trainer.threads = threads_per_job(hc)
    try:
        summary = train(cfg, hc.runtime.output_dir, overrides=list(hc.overrides.task),
                        hydra_cfg=hc)
    except DropbenchError as e:
        if hc.mode == RunMode.RUN:
            die(str(e))  # SystemExit passes through Hydra without its extra report lines
        e.job_dir = str(hc.runtime.output_dir)  # for the sweep's closing line
        raise  # in a sweep, Hydra records the failure and the other jobs go on
    except Exception as e:
        if hc.mode == RunMode.RUN and not DEBUG:  # before Hydra's "Error executing job"
            die(*failure_line(e))
        if hc.mode == RunMode.MULTIRUN:
            e.job_dir = str(hc.runtime.output_dir)  # pickled with the error from a worker
        raise
    return objective(summary)  # what a Hydra sweeper optimises


def threads_per_job(hc) -> int | None:
    """Split the cores among the jobs a parallel launcher runs at once, so N jobs do not
    oversubscribe the CPU (each torch thread pool spins on its cores, and N pools on the same
    cores slow every job down many times over). None: torch's default (OMP_NUM_THREADS)."""
    from hydra.types import RunMode

    cores = os.cpu_count() or 1
    if hc.mode != RunMode.MULTIRUN:
        return None
    if hc.launcher.get("cpus_per_task"):  # submitit: what SLURM gave the task
        return hc.launcher.cpus_per_task
    n_jobs = hc.launcher.get("n_jobs")  # joblib
    if not n_jobs:
        return None
    parallel = cores if n_jobs < 0 else n_jobs  # joblib: -1 = one job per core
    return max(1, cores // parallel)


def train_command(args: list[str], debug: bool = False) -> None:
    import hydra

    from dropbench.config import config_dir, register_schemas
    from dropbench.train_help import print_train_help, wants_help

    register_schemas(args)  # after importing the modules a `plugins=[...]` override names
    global DEBUG
    DEBUG = debug or os.environ.get("HYDRA_FULL_ERROR") == "1"  # the user's own setting
    # Hydra would print its own multi-line report; let errors reach us and say them in one line.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    sys.argv = ["dropbench train", *args]
    app = hydra.main(config_path=str(config_dir()), config_name="config", version_base="1.3")
    OUTPUT.clear()
    try:
        if wants_help(args):
            return print_train_help(args)  # Hydra's own --help takes ~10x longer
        app(_train_task)()
    except KeyboardInterrupt as e:
        # the shell's 128 + signal number: 143 for SIGTERM, 130 for Ctrl-C (SIGINT)
        code = 143 if "SIGTERM" in str(e) else 130
        die("interrupted; the last checkpoint is kept, continue with trainer.resume=true", code)
    except Exception as e:
        report = sys.modules.get("dropbench.report.callback")
        if report is not None:  # a failed sweep's report, listing the failed jobs
            report.write_pending()
        if DEBUG:
            raise
        die(*failure_line(e))
    if not OUTPUT:  # a parallel launcher's jobs ran elsewhere: the sweep's own config says
        OUTPUT.update(sweep_output())
    for kind, path in OUTPUT.items():
        print(f"{kind}: {path}")


def sweep_output() -> dict[str, str]:
    """{"sweep dir": DIR} of a sweep whose jobs ran in other processes, as the sweep's report
    callback saw it start (nothing when that callback is off)."""
    report = sys.modules.get("dropbench.report.callback")
    return ({"sweep dir": str(Path(report.STARTED[-1]).absolute())} if report and report.STARTED
            else {})


def failure_line(e: Exception) -> tuple[str, int]:
    """(one line, exit code) for an error that ended `train`: the user's to fix (2), or
    unexpected (1), with how to see its traceback."""
    message = user_error(e)
    code = 2
    if message is None:
        text = str(e).strip()
        first = text.splitlines()[0] if text else ""
        message = (f"unexpected error ({type(e).__name__}: {first}); rerun with "
                   f"`dropbench --debug train ...` (or HYDRA_FULL_ERROR=1) for the traceback, "
                   f"and report it if the input looks right")
        code = 1
    job_dir = getattr(e, "job_dir", None)
    if job_dir:
        sweep = OUTPUT.get("sweep dir") or str(Path(job_dir).parent)
        message = (f"job {job_dir} failed: {message} (the sweep ran its other jobs; "
                   f"`dropbench status {sweep}` lists each)")
    return message, code


# --- list --------------------------------------------------------------------------------
def describe(path: Path) -> str:
    """A config file's one-line description: its first comment line."""
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("#") and not line.startswith("# @package"):
            return line.lstrip("# ").strip()
    return ""


def declared_details(group: str, path: Path) -> tuple[str, list[str]]:
    """(places, lines under the option) from the scheme's or model's registered declaration,
    for `dropbench list`. Declarations are torch-free (dropbench.registry)."""
    from omegaconf import OmegaConf

    from dropbench import registry

    values = OmegaConf.to_container(OmegaConf.load(path), resolve=False)  # ${...} as written
    entry = {"dropout": registry.SCHEMES, "model": registry.MODELS}.get(group)
    entry = entry.find(path.stem) if entry is not None else None
    origin = [] if entry is None or entry.package == registry.BUILTIN_PACKAGE else [
        f"from {entry.package}"]
    if group == "dropout" and entry is not None:
        scheme = entry.declaration
        deviations = [f"deviates: {d}" for d in scheme.deviations_in(values)]
        return (f" [{', '.join(scheme.kinds) or 'nothing'}]",
                [scheme.summary(values), *deviations, *origin])
    if group == "model" and entry is not None:
        places = entry.declaration.places(OmegaConf.create(values))
        return "", ["dropout places: " + ", ".join(map(str, places)), *origin]
    if group == DROPOUT_DEFAULTS:
        return "", [" ".join(f"{key}={value}" for key, value in values.items())]
    return "", []


# Per-place rates of a (model, scheme) pair: conf/config.yaml picks dropout_defaults/MODEL_SCHEME
# by itself, so it is no group to choose from (GROUPS) but `list` shows it after `dropout`.
DROPOUT_DEFAULTS = "dropout_defaults"


def print_group(roots: list[Path], group: str, note: str = "") -> None:
    files = sorted((f for root in roots for f in (root / group).glob("*.yaml")),
                   key=lambda f: f.stem)
    if not files:
        return
    print(f"{group}:{note}")
    for f in files:
        kinds, details = declared_details(group, f)
        print(f"  {f.stem:<28} {describe(f)}{kinds}")
        for line in details:
            print(f"  {'':<28} {line}")
    print()


def shared_dropout_keys() -> str:
    """The keys every scheme takes (the rate schedule), for the heading of `list`'s dropout."""
    from dataclasses import fields

    from dropbench.dropout.params import SHARED_KEYS, DropoutParams

    shown = [f"{f.name}={'|'.join(f.metadata['choices']) if 'choices' in f.metadata else f.default}"
             for f in fields(DropoutParams) if f.name in SHARED_KEYS]
    return f" (every scheme also takes {' '.join(shown)}: docs/schemes.md)"


def list_command(_args) -> None:
    from dropbench.config import config_dir
    from dropbench.plugin_conf import plugin_config_paths

    roots = [config_dir(), *plugin_config_paths()]  # the plugins' yaml files too
    for group in GROUPS:
        print_group(roots, group, shared_dropout_keys() if group == "dropout" else "")
        if group == "dropout":
            print_group(roots, DROPOUT_DEFAULTS, " (picked for model=M dropout=S when a file M_S "
                        "exists; dropout.* overrides win)")


# --- data --------------------------------------------------------------------------------
def data_command(args) -> None:
    from dropbench.data import manage

    root = Path(args.data_dir).expanduser() if args.data_dir else manage.default_data_dir()
    if args.action == "download":
        for name in args.names:
            print(f"{name}: {manage.download(name, root)}")
        return
    results = manage.verify(args.names, root)
    for name, ok, detail in results:  # not ok: missing or damaged, as the detail says
        print(f"{name:<10} {'ok' if ok else 'NOT OK':<8} {detail}")
    if not all(ok for _, ok, _ in results):
        sys.exit(2)  # data that is not there is an error the lines above say how to fix


# --- report ------------------------------------------------------------------------------
def report_command(args) -> None:
    import logging

    from dropbench.report.build import parse_formats, write_report

    logging.basicConfig(level=logging.WARNING, format="dropbench: warning: %(message)s")
    by = [c.strip() for c in args.by.split(",") if c.strip()] if args.by else None
    out = write_report(args.paths, args.out, parse_formats(args.format), by,
                       baseline=args.baseline)
    print(out / "report.html")


# --- status ------------------------------------------------------------------------------
def status_command(args) -> None:
    from dropbench.status import show

    show(Path(args.sweep_dir), args.watch)


# --- demo --------------------------------------------------------------------------------
def demo_command(args) -> None:
    from dropbench.demo import run_demo

    html, verdict = run_demo(args.out)
    print("\n".join(verdict))
    print(html.resolve())


# --- diff --------------------------------------------------------------------------------
def diff_command(args) -> None:
    from dropbench.diff import diff

    print(diff(args.run_a, args.run_b))


# --- bench -------------------------------------------------------------------------------
def bench_command(args: list[str]) -> None:
    from dropbench.bench import main as bench_main  # its own argparse: `dropbench bench -h`

    try:
        bench_main(args)
    except DropbenchError as e:
        die(str(e))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dropbench",
        description="Dropout experiments: train runs and sweeps, fetch data, list configs.",
        epilog="Train: `dropbench train [hydra overrides]`, e.g. `dropbench train -m "
        "dropout.p=0,0.5 seed=0,1`; `dropbench train --help` shows Hydra's options.",
    )
    parser.add_argument("--version", action="version", version=f"dropbench {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an "
                        "unexpected error (for `train`, as HYDRA_FULL_ERROR=1 does)")
    sub = parser.add_subparsers(dest="command",
                                metavar="{train,demo,list,data,report,status,diff,bench}")

    def command(name: str, summary: str, func=None) -> argparse.ArgumentParser:
        """A subcommand whose `-h` opens with the line the command list shows for it."""
        subcommand = sub.add_parser(name, help=summary,
                                    description=summary[0].upper() + summary[1:])
        if func is not None:
            subcommand.set_defaults(func=func)
        return subcommand

    command("train", "train a run or a sweep (Hydra overrides follow)")
    demo = command("demo", "overfitting with vs without dropout, offline, in a minute: runs, "
                   "report and a verdict", demo_command)
    demo.add_argument("--out", help="where the runs and report go (default: outputs/demo-TIME)")
    command("list", "list every config group and its options", list_command)
    data = command("data", "download or verify datasets in the data directory", data_command)
    data.add_argument("action", choices=["download", "verify"])
    data.add_argument("names", nargs="*", help="datasets: mnist, cifar10, ptb, uci, digits "
                      "(verify: default all)")
    data.add_argument("--data-dir", help="default: $DROPBENCH_DATA or ~/.cache/dropbench")
    report = command("report", "figures and tables from run dirs and sweep dirs", report_command)
    report.add_argument("paths", nargs="+", help="run dirs or sweep dirs (searched recursively)")
    report.add_argument("--out", help="output dir (default: PATH/report)")
    report.add_argument("--format", default="png", help="figure formats: png,svg,pdf")
    report.add_argument("--by", help="config keys that define a configuration, e.g. "
                        "dropout.name,dropout.p (default: the keys that vary, seed excluded)")
    report.add_argument("--baseline", help="the configuration the others are compared with, "
                        "e.g. dropout.p=0 (default: no dropout, else the lowest rate)")
    status = command("status", "every job of a sweep: status, epoch, val metric at the best "
                     "epoch, ETA", status_command)
    status.add_argument("sweep_dir", help="a sweep dir (multirun/DATE/TIME), running or done")
    status.add_argument("--watch", type=float, nargs="?", const=5.0, metavar="SECONDS",
                        help="refresh every SECONDS (default 5) until every job has ended")
    compare = command("diff", "what differs between two runs (or two sweeps, job by job): "
                      "config, manifest, final metrics", diff_command)
    compare.add_argument("run_a", help="a run dir, or a sweep dir")
    compare.add_argument("run_b", help="a run dir, or a sweep dir of the same kind as run_a")
    command("bench", "speed benchmark vs. plain PyTorch loops (`bench -h`)")
    return parser


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    debug = argv[:1] == ["--debug"] or argv[1:2] == ["--debug"]
    if debug:  # `dropbench --debug CMD ...` or `dropbench CMD --debug ...`
        argv = [a for i, a in enumerate(argv) if not (i < 2 and a == "--debug")]
    if argv[:1] == ["train"]:
        return train_command(argv[1:], debug)
    if argv[:1] == ["bench"]:
        return bench_command(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        sys.exit(2)
    if args.command == "data" and args.action == "download" and not args.names:
        parser.error("data download needs a dataset name, e.g. `dropbench data download mnist`")
    try:
        args.func(args)
    except DropbenchError as e:
        die(str(e))
    except BrokenPipeError:  # e.g. `dropbench list | head`: the reader left, nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        sys.exit(0)
    except Exception as e:
        if debug or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        text = str(e).strip()
        die(f"unexpected error ({type(e).__name__}: {text.splitlines()[0] if text else ''}); "
            f"rerun with `dropbench --debug {args.command} ...` for the traceback", 1)


if __name__ == "__main__":
    main()
