"""Regenerate the UCI table of docs/uncertainty.md: Gal & Ghahramani's protocol on real data.

    python scripts/uci_protocol.py [--data-dir DIR] [--quick] [--work DIR] [--datasets a,b]
                                   [--launcher batched_wide|basic]

DIR is a data_dir holding uci/<folder>/data/ (default ../shared/data next to the checkout,
which has five of the nine datasets and the authors' per-split results). Each dataset runs as
one `dropbench train -m +experiment=gal_uci dataset.name=NAME` under --work (a rerun resumes
it), and the table between the UCI markers of docs/uncertainty.md is rewritten from the
sweeps' protocol.json, with the time each study took (protocol.json's wall_s: the training of
every invocation, resumes added up). A study whose protocol.json is complete is read, not run
again. `--quick` runs splits 0 and 1 for 400 of the
4,000 epochs: a smoke test of the pipeline, labelled as such, not a reproduction.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "uncertainty.md"
START, END = "<!-- uci-protocol-table: start -->", "<!-- uci-protocol-table: end -->"
DATASETS = ("boston", "concrete", "energy", "wine", "yacht")


def run(name: str, data_dir: Path, work: Path, quick: bool, launcher: str) -> tuple[dict, float]:
    """One dataset's protocol; (protocol.json, the study's wall seconds)."""
    sweep = work / name
    cmd = [sys.executable, "-m", "dropbench.cli", "train", "-m", "+experiment=gal_uci",
           f"dataset.name={name}", f"data_dir={data_dir}", f"hydra.sweep.dir={sweep}",
           f"hydra/launcher={launcher}", "trainer.threads=1", "~hydra.callbacks.report"]
    if quick:
        cmd += ["protocol.splits=[0,1]", "trainer.epochs=400"]
    written = sweep / "protocol.json"
    if written.exists():  # a finished study is read, not resumed: a resume adds its own time
        summary = json.loads(written.read_text())
        if summary["completed"] == len(summary["splits"]) and summary["full"] != quick:
            return summary, summary["wall_s"]
    done = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{name}: {' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    summary = json.loads((sweep / "protocol.json").read_text())
    return summary, summary["wall_s"]


def cell(stat: dict | None, digits: int) -> str:
    """mean ± se, with no-break spaces: a narrow column wraps between cells, not inside one.
    A digit more where the se would round to 0."""
    if not stat:
        return ""
    digits += stat["se"] < 0.5 * 10 ** -digits
    return f"{stat['mean']:.{digits}f}\u00a0±\u00a0{stat['se']:.{digits}f}"


def gap(ours: dict | None, mean: float, se: float) -> str:
    """Our mean minus the published one, in published standard errors."""
    if not ours:
        return ""
    diff = ours["mean"] - mean
    return f"{diff / se:+.1f}\u00a0SE" if se > 0 else f"{diff:+.3f}"


def table(results: dict[str, tuple[dict, float]]) -> str:
    lines = ["| dataset | splits, epochs, time | MC RMSE ours | authors, same splits | published "
             "| gap | test LL ours | authors, same splits | published | gap |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    order = sorted(results, key=lambda n: DATASETS.index(n) if n in DATASETS else len(DATASETS))
    for name in order:
        s, seconds = results[name]
        pub = s["published"]
        published_rmse = {"mean": pub["mc_rmse"], "se": pub["mc_rmse_se"]}
        published_ll = {"mean": pub["ll"], "se": pub["ll_se"]}
        lines.append(
            f"| {name} | {s['completed']}/{s['n_splits']}, {s['epochs']}"
            f"{'' if s['full'] else ' (quick)'}, {seconds / 60:.1f} min | "
            f"{cell(s.get('test_mc_rmse'), 2)} | "
            f"{cell(s.get('authors_test_mc_rmse'), 2)} | {cell(published_rmse, 2)} | "
            f"{gap(s.get('test_mc_rmse'), pub['mc_rmse'], pub['mc_rmse_se'])} | "
            f"{cell(s.get('test_ll'), 2)} | {cell(s.get('authors_test_ll'), 2)} | "
            f"{cell(published_ll, 2)} | {gap(s.get('test_ll'), pub['ll'], pub['ll_se'])} |")
    return "\n".join(lines) + ("\n\ngap: our mean less the published one, in published "
                               "standard errors.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=REPO.parent / "uci-work")
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--launcher", default="batched_wide", choices=("batched_wide", "basic"),
                    help="batched_wide (gal_uci's default) stacks the jobs; basic: one at a time")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in args.datasets.split(","):
        results[name] = run(name, args.data_dir.resolve(), args.work.resolve(), args.quick,
                            args.launcher)
        print(f"{name}: {results[name][1] / 60:.1f} min", flush=True)
    total = sum(seconds for _, seconds in results.values()) / 60
    how = ("`python scripts/uci_protocol.py" + (" --quick" if args.quick else "")
           + f" --datasets {args.datasets} --launcher {args.launcher}`")
    missing = [name for name in DATASETS if name not in results]
    text = (f"{START}\n{table(results)}\n\nMade by {how} on the data in `../shared/data/uci` "
            f"(the published splits), {total:.1f} min in all on this project's 2-core CPU "
            f"machine." + (f" Not run for this table: {', '.join(missing)}." if missing else "")
            + f"\n{END}")
    doc = DOC.read_text()
    if START in doc and END in doc:
        doc = doc[:doc.index(START)] + text + doc[doc.index(END) + len(END):]
    else:
        doc += "\n" + text + "\n"
    DOC.write_text(doc)
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
