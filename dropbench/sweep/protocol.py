"""The UCI protocol of Gal & Ghahramani 2016 (section 5.3; the authors' updated code, 2018) as a
Hydra sweeper: `dropbench train -m +experiment=gal_uci dataset.name=yacht`.

For every split: each (p, tau) of the dataset's grid (dropout_rates.txt x tau_values.txt)
trains on the first 80 % of the split's training rows and is scored on the last 20 % by its MC
log-likelihood (`dataset.validation=true`); the best pair trains again on the whole training
split and is scored on the test rows (`dataset.validation=false`). Every training is a job of
the configured launcher, so a run dir like any other (batched where the launcher can). The
jobs run with trainer.resume=true: the same command in the same sweep dir continues the study
where it stopped, and a finished training is not trained again.

The sweep dir gets protocol.csv (one row per split) and protocol.md / protocol.json: mean and
standard error over splits, the published table, and split by split the authors' own results
where `<folder>/reference/` holds them (../shared/data/uci has them; the download fetches only
`data/`).
"""

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from dropbench.atomic import atomic_write_bytes, write_csv, write_json
from dropbench.data.uci import data_folder, read_grid
from dropbench.errors import DropbenchError

log = logging.getLogger("dropbench.sweep")

# The keys the protocol sets on every job; an override of one of them is refused.
OWN_KEYS = ("dataset.split", "dataset.validation", "dataset.tau", "dropout.p", "dropout.p_input")
CSV_COLUMNS = ("split", "p", "tau", "test_rmse", "test_mc_rmse", "test_ll", "test_one_pass_rmse",
               "val_ll", "status", "run")


@dataclass(frozen=True)
class Published:
    """One dataset's row of the published table: mean and standard error over splits."""

    mc_rmse: float
    mc_rmse_se: float
    ll: float
    ll_se: float


PUBLISHED_REF = ("Gal & Ghahramani 2016, the grid-search results of the authors' updated code "
                 "(github.com/yaringal/DropoutUncertaintyExps, 2018): MC RMSE and test "
                 "log-likelihood, mean ± standard error over the splits")
PUBLISHED = {
    "boston": Published(2.90, 0.18, -2.40, 0.04),
    "concrete": Published(4.82, 0.16, -2.93, 0.02),
    "energy": Published(0.54, 0.06, -1.21, 0.01),
    "kin8nm": Published(0.08, 0.00, 1.14, 0.01),
    "naval": Published(0.00, 0.00, 4.45, 0.00),
    "power": Published(4.01, 0.04, -2.80, 0.01),
    "protein": Published(4.27, 0.02, -2.87, 0.00),
    "wine": Published(0.62, 0.01, -0.93, 0.01),
    "yacht": Published(0.67, 0.05, -1.25, 0.01),
}


@dataclass
class SplitResult:
    split: int
    p: float | None = None
    tau: float | None = None
    test_rmse: float | None = None  # the weight-scaled network
    test_mc_rmse: float | None = None  # the mean of T stochastic passes
    test_ll: float | None = None  # the MC predictive's log-likelihood
    test_one_pass_rmse: float | None = None  # one stochastic pass (the authors' test_rmse)
    val_ll: float | None = None  # the score that chose (p, tau)
    status: str = "completed"
    run: str = ""


def grid_job(base: list[str], split: int, p: float, tau: float, validation: bool) -> list[str]:
    """A job's overrides; its dir says what it is: split03/select/p=0.05,tau=0.5 (choosing)
    or split03/refit (the chosen pair on the whole training split, tested)."""
    subdir = f"split{split:02d}/" + (f"select/p={p},tau={tau}" if validation else "refit")
    return [*base, f"dataset.split={split}", f"dataset.validation={str(validation).lower()}",
            f"dropout.p={p}", f"dropout.p_input={p}", f"dataset.tau={tau}",
            "trainer.resume=true", f"hydra.sweep.subdir='{subdir}'"]


def job_overrides(arguments: list[str], parser) -> tuple[list[str], set[str]]:
    """The user's overrides every job gets: all but `protocol.*` (the study's own settings),
    and the keys they set; a list to sweep, or a key the protocol sets, is refused in one
    line."""
    base, keys = [], set()
    for override in parser.parse_overrides(arguments):
        key = override.get_key_element().lstrip("+~")
        if override.is_sweep_override():
            raise DropbenchError(f"{override.input_line}: the UCI protocol sweeps the splits "
                                 f"and the (p, tau) grid itself; give one value (splits: "
                                 f"protocol.splits=[0,1])")
        if key in OWN_KEYS:
            raise DropbenchError(f"{override.input_line}: the UCI protocol sets {key} for each "
                                 f"job; drop it (choose splits with protocol.splits=[0,1])")
        if not key.startswith("protocol."):
            base.append(override.input_line)
            keys.add(key)
    return base, keys


def summary_of(ret) -> tuple[dict, Path | None]:
    """A job's summary.json and run dir, or ({}, dir) when it left none."""
    try:
        run_dir = Path(ret.hydra_cfg.hydra.runtime.output_dir)
    except AttributeError:
        return {}, None
    try:
        return json.loads((run_dir / "summary.json").read_text()), run_dir
    except (OSError, ValueError):
        return {}, run_dir


def choose(scores: list[tuple[float, float, float | None]]) -> tuple[float, float, float] | None:
    """The (p, tau, val_ll) with the highest validation log-likelihood; the first in grid order
    on a tie; None when no job of the split gave a finite score."""
    finite = [s for s in scores if s[2] is not None and math.isfinite(s[2])]
    return max(finite, key=lambda s: s[2]) if finite else None


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error over splits, as the authors' summaries compute it: the standard
    deviation over n splits (divided by n) over sqrt(n)."""
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / n)
    return mean, sd / math.sqrt(n)


def read_reference(folder: Path) -> dict[str, list[float]]:
    """The authors' per-split results in `<folder>/reference/`, where present."""
    ref = {}
    for key, name in (("test_mc_rmse", "test_MC_rmse.txt"), ("test_ll", "test_ll.txt"),
                      ("test_one_pass_rmse", "test_rmse.txt"), ("tau", "test_tau.txt")):
        path = folder / "reference" / name
        if path.is_file():
            ref[key] = [float(v) for v in path.read_text().split()]
    return ref


class Protocol:
    def __init__(self, config, launcher, parser, arguments: list[str]):
        self.config, self.launcher = config, launcher
        self.base, given = job_overrides(arguments, parser)
        self.name = config.dataset.name
        root = Path(str(config.data_dir)).expanduser()
        self.folder = data_folder(root, self.name).parent
        self.grid = read_grid(root, self.name, bool(config.dataset.download))
        # the dataset's own width and epochs (protein: 100 units, 2,000 epochs), unless given
        if "model.hidden" not in given:
            self.base.append(f"model.hidden=[{self.grid.n_hidden}]")
        if "trainer.epochs" not in given:
            self.base.append(f"trainer.epochs={self.grid.epochs}")
        asked = config.protocol.splits
        splits = list(range(self.grid.n_splits)) if asked is None else list(asked)
        bad = [k for k in splits if not 0 <= k < self.grid.n_splits]
        if bad or not splits:
            raise DropbenchError(f"protocol.splits={asked}: {self.name} has splits 0.."
                                 f"{self.grid.n_splits - 1}")
        self.splits = splits
        self.epochs = int(config.trainer.epochs) if "trainer.epochs" in given else self.grid.epochs
        self.sweep_dir = Path(str(config.hydra.sweep.dir)).resolve()
        self.next_job = 0

    def launch(self, jobs: list[list[str]]) -> list:
        returns = self.launcher.launch(jobs, initial_job_idx=self.next_job)
        self.next_job += len(jobs)
        return returns

    def run(self) -> list:
        self.started = time.perf_counter()
        g = self.grid
        pairs = [(p, tau) for p in g.rates for tau in g.taus]
        log.info("UCI protocol on %s: splits %s, %d (p, tau) pairs each, %d epochs%s",
                 self.name, self.splits, len(pairs), self.epochs,
                 "" if self.full else f" (a quick look: the protocol trains {g.epochs})")
        select = [(k, p, tau) for k in self.splits for p, tau in pairs]
        select_returns = self.launch([grid_job(self.base, k, p, tau, True)
                                      for k, p, tau in select])
        scores: dict[int, list] = {k: [] for k in self.splits}
        for (k, p, tau), ret in zip(select, select_returns, strict=True):
            summary, _ = summary_of(ret)
            ok = summary.get("status") == "completed"
            scores[k].append((p, tau, summary.get("val_mc_ll") if ok else None))
        results = {k: SplitResult(k) for k in self.splits}
        refit = []
        for k in self.splits:
            best = choose(scores[k])
            if best is None:
                results[k].status = "failed: no (p, tau) of the grid finished with a val score"
                continue
            results[k].p, results[k].tau, results[k].val_ll = best
            refit.append(k)
        refit_returns = self.launch([grid_job(self.base, k, results[k].p, results[k].tau,
                                              False) for k in refit])
        for k, ret in zip(refit, refit_returns, strict=True):
            summary, run_dir = summary_of(ret)
            r = results[k]
            r.run = str(run_dir.resolve().relative_to(self.sweep_dir)) if run_dir else ""
            r.status = summary.get("status", "failed: no summary.json")
            if r.status == "completed":
                r.test_rmse, r.test_mc_rmse = summary.get("test_rmse"), summary.get("test_mc_rmse")
                r.test_ll = summary.get("test_mc_ll")
                r.test_one_pass_rmse = summary.get("test_one_pass_rmse")
        self.write([results[k] for k in self.splits])
        return [select_returns, refit_returns]

    def earlier_wall_s(self) -> float:
        """The time earlier invocations of this study spent (a resume adds its own to it)."""
        try:
            return float(json.loads((self.sweep_dir / "protocol.json").read_text())["wall_s"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0.0

    @property
    def full(self) -> bool:
        return self.epochs == self.grid.epochs

    def write(self, results: list[SplitResult]) -> None:
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        write_csv(self.sweep_dir / "protocol.csv",
                  [{c: asdict(r)[c] for c in CSV_COLUMNS} for r in results])
        summary = self.summary(results)
        write_json(self.sweep_dir / "protocol.json", summary)
        atomic_write_bytes(self.sweep_dir / "protocol.md", markdown(summary).encode())
        log.info("UCI protocol: %s", self.sweep_dir / "protocol.md")

    def summary(self, results: list[SplitResult]) -> dict:
        done = [r for r in results if r.status == "completed"]
        ref = read_reference(self.folder)
        out = {
            "dataset": self.name, "splits": self.splits, "n_splits": self.grid.n_splits,
            "wall_s": round(self.earlier_wall_s() + time.perf_counter() - self.started, 1),
            "epochs": self.epochs, "protocol_epochs": self.grid.epochs, "full": self.full,
            "grid": {"p": self.grid.rates, "tau": self.grid.taus},
            "completed": len(done), "failed": [r.split for r in results if r not in done],
            "convention": "mean ± standard error over splits (sd over n, / sqrt(n)), as the "
                          "authors' summaries",
            "published": asdict(PUBLISHED[self.name]) if self.name in PUBLISHED else None,
            "published_ref": PUBLISHED_REF,
            "per_split": [asdict(r) for r in results],
            "reference": ({k: [v[s] if s < len(v) else None for s in self.splits]
                           for k, v in ref.items()} if ref else None),
        }
        for key in ("test_mc_rmse", "test_ll", "test_rmse", "test_one_pass_rmse"):
            values = [getattr(r, key) for r in done if getattr(r, key) is not None]
            if values:
                out[key] = dict(zip(("mean", "se"), mean_se(values), strict=True))
            if ref.get(key) and values:  # the authors' results on the same splits
                same = [ref[key][r.split] for r in done if r.split < len(ref[key])]
                out[f"authors_{key}"] = dict(zip(("mean", "se"), mean_se(same), strict=True))
        return out


def fmt(stat: dict | None, digits: int = 2) -> str:
    return "" if not stat else f"{stat['mean']:.{digits}f} ± {stat['se']:.{digits}f}"


def num(value, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def markdown(s: dict) -> str:
    name, n = s["dataset"], len(s["splits"])
    scope = (f"{s['completed']} of {n} splits completed (the dataset has {s['n_splits']}), "
             f"{s['epochs']} epochs")
    if not s["full"]:
        scope += f": A QUICK LOOK, the protocol trains {s['protocol_epochs']}"
    lines = [f"# UCI protocol: {name}", "", scope + ".", "",
             f"Grid per split: p in {s['grid']['p']}, tau in {s['grid']['tau']}; chosen by "
             f"validation MC log-likelihood, retrained on the whole training split. "
             f"{s['convention'].capitalize()}.", ""]
    pub = s["published"]
    lines += ["| | MC RMSE | test LL | RMSE (weight scaling) |", "|---|---|---|---|",
              f"| ours | {fmt(s.get('test_mc_rmse'), 3)} | {fmt(s.get('test_ll'), 3)} | "
              f"{fmt(s.get('test_rmse'), 3)} |"]
    if s.get("authors_test_mc_rmse"):
        lines.append(f"| the authors, same splits | {fmt(s['authors_test_mc_rmse'], 3)} | "
                     f"{fmt(s.get('authors_test_ll'), 3)} | |")
    if pub:
        lines.append(f"| published (all splits) | {pub['mc_rmse']:.2f} ± {pub['mc_rmse_se']:.2f}"
                     f" | {pub['ll']:.2f} ± {pub['ll_se']:.2f} | |")
    lines += ["", f"Published: {s['published_ref']}.", ""]
    ref = s.get("reference") or {}
    head = "| split | p | tau | MC RMSE | test LL | RMSE (scale) | status |"
    rule = "|---|---|---|---|---|---|---|"
    if ref:
        head = ("| split | p | tau | authors' tau | MC RMSE | authors' | test LL | authors' | "
                "RMSE (scale) | status |")
        rule = "|---|---|---|---|---|---|---|---|---|---|"
    lines += [head, rule]
    def theirs(key: str, i: int, digits: int = 3) -> str:
        values = ref.get(key) or []
        return num(values[i] if i < len(values) else None, digits)

    for i, r in enumerate(s["per_split"]):
        if ref:
            lines.append(f"| {r['split']} | {r['p']} | {r['tau']} | {theirs('tau', i, 2)} | "
                         f"{num(r['test_mc_rmse'])} | {theirs('test_mc_rmse', i)} | "
                         f"{num(r['test_ll'])} | {theirs('test_ll', i)} | {num(r['test_rmse'])} | "
                         f"{r['status']} |")
        else:
            lines.append(f"| {r['split']} | {r['p']} | {r['tau']} | {num(r['test_mc_rmse'])} | "
                         f"{num(r['test_ll'])} | {num(r['test_rmse'])} | {r['status']} |")
    return "\n".join(lines) + "\n"

