"""The CLI's quick commands stay quick: they never import torch, pandas or matplotlib, and
neither does config validation.

Checked by behaviour (which modules a subprocess ended up importing), not by timing; the
startup times themselves are measured by `dropbench bench --cases startup`.
"""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO
from data_files import write_mnist

HEAVY = ("torch", "pandas", "matplotlib", "sklearn", "torchvision")

# Runs the CLI in-process in a fresh interpreter, then reports the heavy modules it imported.
PROBE = """
import contextlib, io, json, os, sys
from dropbench.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        main(sys.argv[1:])
    except SystemExit as e:
        code = e.code or 0
    else:
        code = 0
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(os.environ["HEAVY"].split()))
print(json.dumps({"code": code, "heavy": heavy, "out": out.getvalue(),
                  "dynamo": "torch._dynamo" in sys.modules}))
"""


def imported_by(*argv: str, env: dict | None = None) -> dict:
    env = {**os.environ, "HEAVY": " ".join(HEAVY), **(env or {})}
    result = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize("argv", [["--version"], ["train", "--help"],
                                  ["train", "--help", "model=lenet", "dropout.p=0.3"]])
def test_quick_commands_import_nothing_heavy(argv):
    probe = imported_by(*argv)
    assert probe["code"] == 0
    assert probe["heavy"] == [], f"`dropbench {' '.join(argv)}` imported {probe['heavy']}"


def test_list_shows_every_scheme_and_model_without_torch():
    """`dropbench list` reads the torch-free declarations (dropout/catalog.py, models/places.py)
    and still names every registered scheme with its kinds and every model with its places."""
    from dropbench.dropout import SCHEMES
    from dropbench.models import MODELS

    probe = imported_by("list")
    assert probe["code"] == 0
    assert probe["heavy"] == [], f"`dropbench list` imported {probe['heavy']}"
    sections = {block.splitlines()[0]: block.splitlines()[1:]
                for block in probe["out"].strip().split("\n\n")}
    dropout = next(lines for head, lines in sections.items() if head.startswith("dropout:"))
    schemes = {line.split()[0]: line for line in dropout if line[2] != " "}
    assert set(schemes) == set(SCHEMES)
    for name, scheme in SCHEMES.items():
        assert schemes[name].endswith(f"[{', '.join(scheme.kinds) or 'nothing'}]"), name
    models = sections["model:"]
    for name in MODELS:
        at = next(i for i, line in enumerate(models) if line.split()[0] == name)
        assert models[at + 1].split(maxsplit=2)[:2] == ["dropout", "places:"], name
    defaults = next(lines for head, lines in sections.items()
                    if head.startswith("dropout_defaults:"))
    assert "p=[0.1, 0.25, 0.5, 0.5]" in " ".join(defaults)  # dropout_defaults/lenet_standard


VALIDATE = """
import json, os, sys
from hydra import compose, initialize_config_dir
from dropbench import DropbenchError
from dropbench.config import config_dir, register_schemas, validate
register_schemas()
with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
    good = compose(config_name="config", overrides=["dataset=ptb", "model=lstm",
                                                     "dropout=variational"])
    bad = compose(config_name="config", overrides=["dataset=ptb", "model=lstm",
                                                    "dropout=dropconnect"])
validate(good)
try:
    validate(bad)
    refusal = None
except DropbenchError as e:
    refusal = str(e)
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(os.environ["HEAVY"].split()))
print(json.dumps({"refusal": refusal, "heavy": heavy}))
"""


def test_config_validation_runs_before_torch_loads():
    """Every rate on a place the model has and the scheme serves: checked from the
    declarations alone, so a bad config is refused before torch is imported."""
    env = {**os.environ, "HEAVY": " ".join(HEAVY)}
    result = subprocess.run([sys.executable, "-c", VALIDATE], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout.splitlines()[-1])
    assert probe["heavy"] == []
    assert probe["refusal"].startswith("dropout=dropconnect cannot drop the hidden place")


def test_train_help_shows_groups_and_the_composed_config():
    out = imported_by("train", "--help", "model=lenet", "dropout.p=0.3")["out"]
    assert out.startswith("dropbench train: train one run")
    assert "dropout: " in out and "standard" in out and "hydra/launcher: " in out
    assert "name: lenet" in out and "p: 0.3" in out
    # every declared key carries its one-line help and range (ranges.py), the chosen model's too
    p = next(line for line in out.splitlines() if line.strip().startswith("p: 0.3"))
    assert "  # " in p and "in [0, 1)" in p
    assert any(line.strip().startswith("channels:") and "integers >= 1" in line
               for line in out.splitlines())
    assert "--hydra-help" in out  # the footer points to Hydra's own options


def test_train_help_with_a_bad_override_is_one_line(cli):
    r = cli("train", "--help", "dropout.nope=1")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "dropout=standard has no key 'nope'; its keys: p, p_input" in r.stderr


def test_training_never_loads_torch_dynamo(tmp_path):
    """torch.optim's compile wrappers would import torch._dynamo (about as costly as torch
    itself); a run without trainer.compile trains, checkpoints and resumes without it."""
    # a step schedule (a cosine run cannot be extended: its schedule depends on the length)
    args = ["train", "trainer.progress=false", "trainer.threads=1", "optim.schedule=step",
            f"hydra.run.dir={tmp_path / 'run'}"]
    env = {"DROPBENCH_DATA": str(tmp_path / "data"), "OMP_NUM_THREADS": "1"}
    first = imported_by(*args, "trainer.epochs=1", env=env)
    assert first["code"] == 0 and first["dynamo"] is False
    resumed = imported_by(*args, "trainer.epochs=2", "trainer.resume=true", env=env)
    assert resumed["code"] == 0 and resumed["dynamo"] is False
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["epochs_run"] == 2


def test_a_single_mnist_run_loads_neither_torchvision_nor_the_report_stack(tmp_path):
    """The IDX files are read without torchvision, and a single run (no sweep) prints no
    sweep progress line, whose status reader would bring in the report's pandas."""
    write_mnist(tmp_path / "data", n_train=120, n_test=40)
    probe = imported_by("train", "dataset=mnist", "dataset.download=false",
                        "dataset.val_size=20", "trainer.epochs=1", "trainer.progress=false",
                        "trainer.threads=1", f"data_dir={tmp_path / 'data'}",
                        f"hydra.run.dir={tmp_path / 'run'}", env={"OMP_NUM_THREADS": "1"})
    assert probe["code"] == 0
    assert probe["heavy"] == ["torch"], probe["heavy"]
    assert " done (" not in probe["out"]


def test_list_into_a_pipe_that_closes_early_is_quiet():
    """`dropbench list | head -1`: the reader leaves early; no BrokenPipeError traceback."""
    r = subprocess.run(f"'{sys.executable}' -m dropbench.cli list | head -1", shell=True,
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.stdout == "dataset:\n"
    assert r.stderr == "", r.stderr
