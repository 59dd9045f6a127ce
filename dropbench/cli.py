"""`dropbench train | list | data | --version`.

`train` hands its arguments to a Hydra app (multirun, --cfg, --help and overrides all work as in
any Hydra app); the other commands are plain argparse. User errors from either end as one line
on stderr with a non-zero exit, never a traceback.
"""

import argparse
import os
import re
import sys
from pathlib import Path

from dropbench import DropbenchError, __version__, jobdir

# Sweep job dirs are named by a resolver (conf/config.yaml, hydra.sweep.subdir). Parallel
# launchers resolve it in their workers, which import this module to unpickle _train_task.
jobdir.register()

GROUPS = ["dataset", "model", "dropout", "optim", "trainer", "logger", "experiment",
          "hydra/launcher", "hydra/sweeper"]


def die(message: str, code: int = 2):
    print(f"dropbench: error: {message}", file=sys.stderr)
    sys.exit(code)


# --- train -------------------------------------------------------------------------------
def _train_task(cfg):
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import open_dict

    from dropbench.engine import train

    hc = HydraConfig.get()
    if cfg.trainer.threads is None:
        with open_dict(cfg):
            cfg.trainer.threads = threads_per_job(hc)
    try:
        summary = train(cfg, hc.runtime.output_dir, overrides=list(hc.overrides.task),
                        hydra_cfg=hc)
    except DropbenchError as e:
        if hc.mode == RunMode.RUN:
            die(str(e))  # SystemExit passes through Hydra without its extra report lines
        raise  # in a sweep, Hydra records the failure and the other jobs go on
    return summary.get(f"best_val_{summary.get('metric')}")  # what a Hydra sweeper optimises


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


def train_command(args: list[str]) -> None:
    import hydra

    from dropbench.config import config_dir, register_schemas
    from dropbench.train_help import print_train_help, wants_help

    register_schemas(args)  # after importing the modules a `plugins=[...]` override names
    # Hydra would print its own multi-line report; let errors reach us and say them in one line.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    sys.argv = ["dropbench train", *args]
    app = hydra.main(config_path=str(config_dir()), config_name="config", version_base="1.3")
    try:
        if wants_help(args):
            return print_train_help(args)  # Hydra's own --help takes ~10x longer
        app(_train_task)()
    except KeyboardInterrupt as e:
        code = 143 if "SIGTERM" in str(e) else 130  # the shell's 128 + signal number
        die("interrupted; the last checkpoint is kept, continue with trainer.resume=true", code)
    except Exception as e:
        message = user_error(e)
        if message is None:
            raise  # a bug, not bad input: keep the traceback
        die(message)


def user_error(e: Exception) -> str | None:
    """One line for an error the user can fix, or None for anything else."""
    from hydra.errors import HydraException, MissingConfigException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(e, DropbenchError):
        return str(e)
    if isinstance(e, OSError) and e.filename:  # e.g. Hydra creating an unwritable run dir
        return (f"cannot write {e.filename} ({e.strerror}); pick a writable output directory "
                f"with hydra.run.dir=... (or hydra.sweep.dir=... for -m)")
    if isinstance(e, MissingConfigException) and e.options is not None and e.missing_cfg_file:
        group, _, name = e.missing_cfg_file.rpartition("/")
        choices = ", ".join(o for o in e.options if not o.startswith("base_"))
        return f"no {group} named {name!r}; choose one of: {choices} (see `dropbench list`)"
    if not isinstance(e, (HydraException, OmegaConfBaseException)):
        return None
    text = str(e)
    foreign = re.search(r"Key '(\w+)' not in '(\w+)'", f"{text}\n{e.__cause__}")
    if foreign:
        from dropbench.config import foreign_key_message

        source = re.match(r"In '([^']+)'", text)
        message = foreign_key_message(*foreign.groups(), source and source.group(1))
        if message:
            return message
    unknown = re.match(r"Could not override '([^']+)'", text)
    if unknown and "not in" in str(e.__cause__ or text):
        return (f"unknown config key '{unknown.group(1)}'; `dropbench train --cfg job` shows "
                f"every key (prefix a new key with + to add it)")
    if isinstance(e.__cause__, OmegaConfBaseException):
        text += "\n" + str(e.__cause__)
    full_key = re.search(r"full_key: (\S+)", text)
    skip = ("full_key:", "object_type=", "reference_type=", "Config search path", "Set the env")
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(skip)]
    message = "; ".join(dict.fromkeys(lines))  # drop repeats, keep order
    if full_key and full_key.group(1) not in message:
        message = f"{full_key.group(1)}: {message}"
    return message + " (check the override against `dropbench train --cfg job`)"


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


def list_command(_args) -> None:
    from dropbench.config import config_dir
    from dropbench.plugin_conf import plugin_config_paths

    roots = [config_dir(), *plugin_config_paths()]  # the plugins' yaml files too
    for group in GROUPS:
        print_group(roots, group)
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
    for name, ok, detail in results:
        print(f"{name:<10} {'ok' if ok else 'MISSING':<8} {detail}")
    if not all(ok for _, ok, _ in results):
        sys.exit(1)


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
    sub = parser.add_subparsers(dest="command",
                                metavar="{train,demo,list,data,report,status,diff,bench}")
    sub.add_parser("train", help="train a run or a sweep (Hydra overrides follow)")
    demo = sub.add_parser("demo", help="overfitting with vs without dropout, offline, in a "
                          "minute: runs, report and a verdict")
    demo.add_argument("--out", help="where the runs and report go (default: outputs/demo-TIME)")
    demo.set_defaults(func=demo_command)
    sub.add_parser("list", help="list every config group and its options").set_defaults(
        func=list_command)
    data = sub.add_parser("data", help="download or verify datasets in the data directory")
    data.add_argument("action", choices=["download", "verify"])
    data.add_argument("names", nargs="*", help="datasets (verify: default all)")
    data.add_argument("--data-dir", help="default: $DROPBENCH_DATA or ~/.cache/dropbench")
    data.set_defaults(func=data_command)
    report = sub.add_parser("report", help="figures and tables from run dirs and sweep dirs")
    report.add_argument("paths", nargs="+", help="run dirs or sweep dirs (searched recursively)")
    report.add_argument("--out", help="output dir (default: PATH/report)")
    report.add_argument("--format", default="png", help="figure formats: png,svg,pdf")
    report.add_argument("--by", help="config keys that define a configuration, e.g. "
                        "dropout.name,dropout.p (default: the keys that vary, seed excluded)")
    report.add_argument("--baseline", help="the configuration the others are compared with, "
                        "e.g. dropout.p=0 (default: no dropout, else the lowest rate)")
    report.set_defaults(func=report_command)
    status = sub.add_parser("status", help="every job of a sweep: status, epoch, val metric at the best epoch, ETA")
    status.add_argument("sweep_dir", help="a sweep dir (multirun/DATE/TIME), running or done")
    status.add_argument("--watch", type=float, nargs="?", const=5.0, metavar="SECONDS",
                        help="refresh every SECONDS (default 5) until every job has ended")
    status.set_defaults(func=status_command)
    compare = sub.add_parser("diff", help="what differs between two runs (or two sweeps, job by "
                             "job): config, manifest, final metrics")
    compare.add_argument("run_a")
    compare.add_argument("run_b")
    compare.set_defaults(func=diff_command)
    sub.add_parser("bench", help="speed benchmark vs. plain PyTorch loops (`bench -h`)")
    return parser


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["train"]:
        return train_command(argv[1:])
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


if __name__ == "__main__":
    main()
