"""The installed plugin through dropbench's command line: found through its entry point, listed
with its package, composed from its own yaml files and trained like a built-in scheme."""

import csv
import json
import os
import subprocess
import sys

import pytest
from conftest import entry_point_installed

from dropbench_curriculum.plugin import CurriculumParams

pytestmark = pytest.mark.skipif(
    not entry_point_installed(),
    reason="the plugin is not installed, so dropbench cannot find its entry point: "
           "pip install ./examples/plugin (or --target a dir on PYTHONPATH)")

QUICK = ("trainer.progress=false", "trainer.threads=1")  # dataset: the default, offline digits


def dropbench(*args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "dropbench.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_dropbench_list_names_the_scheme_and_the_model_with_their_package(tmp_path):
    listed = dropbench("list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    for name in ("curriculum", "resmlp"):
        at = next(i for i, line in enumerate(lines) if line.split()[:1] == [name])
        following = lines[at + 1:at + 4]  # its keys or places, then where it comes from
        assert any("from dropbench-curriculum" in line for line in following), lines[at:at + 4]


def test_train_help_offers_the_plugins_options_and_shows_its_keys_help(tmp_path):
    shown = dropbench("train", "--help", "dropout=curriculum", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    groups = {line.split(":")[0]: line for line in shown.stdout.splitlines() if ": " in line}
    assert "curriculum" in groups["dropout"] and "resmlp" in groups["model"]
    gamma = next(line for line in shown.stdout.splitlines() if line.strip().startswith("gamma:"))
    assert "# " in gamma and "> 0" in gamma  # its one-line help and its range


def test_two_epochs_of_resmlp_with_curriculum_dropout(tmp_path):
    run = tmp_path / "run"
    done = dropbench("train", "model=resmlp", "dropout=curriculum", "dropout.p_input=0.1",
                     "trainer.epochs=2", *QUICK, f"hydra.run.dir={run}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed"
    built = [(e["place"], e["scheme"]) for e in summary["dropout_built"]]
    assert built == [("input", "curriculum"), ("block", "curriculum"), ("block", "curriculum")]
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    logged = [float(row["p.blocks.0.2"]) for row in rows]  # the rate in use after each epoch
    assert len(logged) == 2 and 0 < logged[0] < logged[1] < 0.5


def test_a_key_the_scheme_does_not_declare_is_refused_in_one_line(tmp_path):
    refused = dropbench("train", "dropout=curriculum", "dropout.gama=0.01", *QUICK,
                        cwd=tmp_path)
    assert refused.returncode != 0
    assert "Traceback" not in refused.stderr
    message = [line for line in refused.stderr.splitlines() if "gama" in line]
    assert len(message) == 1 and "gamma" in message[0]  # names the key it meant


def test_the_plugins_yaml_file_composes_as_dropout_curriculum(tmp_path):
    shown = dropbench("train", "dropout=curriculum", "--cfg", "job", "--package", "dropout",
                      cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert f"gamma: {CurriculumParams.gamma}" in shown.stdout
