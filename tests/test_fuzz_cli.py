"""Config fuzzing: random override lists, mixing valid and invalid values for many keys, either
train a tiny job to `completed` or end in exactly one error line, with no traceback and no run
dir that claims anything but the failure."""

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import run_cli

junk = st.text(alphabet="ab01.,-[]{}$:=' ", min_size=0, max_size=6)
numbers = st.one_of(st.integers(-3, 3), st.floats(-1.5, 1.5, allow_nan=False).map(
    lambda x: round(x, 2)))
specials = st.sampled_from(["nan", "inf", "-inf", "1e9", "-0.0", "null"])


def around(low, high):
    """Numbers near a range's limits, both sides: where off-by-one checks go wrong."""
    edges = [low - 1, low, low + 1, high - 1, high, high + 1] if math.isfinite(high) else \
        [low - 1, low, low + 1, low + 10]
    return st.one_of(st.sampled_from(edges), specials)


rates = st.one_of(numbers, st.sampled_from([0, 0.5, 0.99, 1, "abc", "1e-3"]))
VALUES = {
    "dropout.p": st.one_of(rates, st.lists(numbers, max_size=3).map(
        lambda v: "[" + ",".join(map(str, v)) + "]"), junk),
    "dropout.p_input": st.one_of(rates, junk),
    "trainer.epochs": st.one_of(st.integers(-2, 1), junk),
    "trainer.batch_size": st.one_of(st.integers(-1, 64), junk),
    "trainer.patience": st.one_of(st.integers(-1, 2), st.just("null")),
    "trainer.train_eval_size": st.sampled_from([-1, 0, 1, 50]),
    "trainer.threads": st.sampled_from([-1, 0, 1, "null"]),
    "trainer.amp": st.sampled_from(["off", "bf16", "fp8"]),
    "seed": st.one_of(st.integers(-5, 5), st.sampled_from([2**32 - 1, 2**32, 2**40]), junk),
    "optim.lr": st.one_of(numbers, specials, junk),
    "optim.name": st.sampled_from(["sgd", "adam", "adamw", "ntasgd", "lbfgs"]),
    "optim.momentum": st.one_of(around(0, 1), st.just(0.9)),
    "optim.nesterov": st.sampled_from(["true", "false", "maybe"]),
    "optim.weight_decay": st.one_of(around(0, math.inf), st.just(1e-4)),
    "optim.l1": st.one_of(around(0, math.inf), st.just(1e-5)),
    "optim.clip": st.one_of(around(0, math.inf), st.just(5)),
    "optim.max_norm": st.one_of(numbers, st.just("null")),
    "optim.schedule": st.sampled_from(["none", "step", "cosine", "decay_after", "linear"]),
    "optim.step_size": around(1, math.inf),
    "optim.gamma": st.one_of(around(0, 1), st.just(0.5)),
    "optim.lr_decay": around(1, math.inf),
    "optim.decay_after": around(0, math.inf),
    "model.activation": st.sampled_from(["relu", "tanh", "sigmoid", "selu", "swish"]),
    "model.hidden": st.sampled_from(["[8]", "[]", "[0]", "[-4]", "[8,4]", "x", "8"]),
    "dataset.val_size": st.sampled_from([0, 1, 50, 5000]),
    "dataset.train_subset": st.sampled_from(["null", 0, 10, 100]),
    "dataset.augment": st.sampled_from(["true", "false"]),
    "eval.mode": st.sampled_from(["scale", "mc", "bayes"]),
    "eval.mc_samples": st.sampled_from([-1, 0, 2]),
    "eval.compare": st.sampled_from(["true", "false"]),
    "dropout": st.sampled_from(["none", "standard", "spatial", "dropblock", "gaussian",
                                "concrete", "bogus"]),
    "model": st.sampled_from(["mlp", "lenet", "lstm", "bogus"]),
    "dataset": st.sampled_from(["digits", "ptb", "nope"]),
    "device": st.sampled_from(["cpu", "tpu", "auto", "cuda:x"]),
    "dropout.typo": numbers,
    "trainer.epoch": numbers,
}
overrides = st.lists(
    st.sampled_from(sorted(VALUES)).flatmap(
        lambda key: VALUES[key].map(lambda value: f"{key}={value}")),
    min_size=1, max_size=5,
)


def run_or_fail_in_one_line(tmp, drawn) -> None:
    # tiny jobs: the drawn overrides come last, so they win over these
    args = ["trainer.epochs=1", "model.hidden=[8]", "dataset.train_subset=100",
            "trainer.progress=false", "trainer.threads=1", "device=cpu",
            "dataset.download=false", *drawn]
    r = run_cli("train", *args, "hydra.run.dir=run", cwd=tmp,
                env={"DROPBENCH_DATA": str(tmp / "data")}, timeout=120)
    assert "Traceback" not in r.stdout + r.stderr, (drawn, r.stderr)
    summary = tmp / "run" / "summary.json"
    if r.returncode == 0:
        assert json.loads(summary.read_text())["status"] == "completed", drawn
        return
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dropbench: error: "), (drawn, r.stderr)
    if (tmp / "run").exists():  # refused after the dir was made: it says so
        # diverged: a valid config whose training blew up, recorded as such
        assert json.loads(summary.read_text())["status"] in ("failed", "diverged"), drawn


FUZZ = {"deadline": None, "derandomize": True,
        "suppress_health_check": [HealthCheck.function_scoped_fixture]}


@pytest.mark.slow
@settings(max_examples=12, **FUZZ)
@given(overrides)
def test_random_overrides_run_or_fail_in_one_line(tmp_path_factory, drawn):
    run_or_fail_in_one_line(tmp_path_factory.mktemp("fuzz"), drawn)


@pytest.mark.slow
@settings(max_examples=150, **FUZZ)
@given(overrides)
def test_many_random_overrides(tmp_path_factory, drawn):
    run_or_fail_in_one_line(tmp_path_factory.mktemp("fuzz"), drawn)


SWEPT = {key: VALUES[key] for key in ("dropout.p", "seed", "optim.lr", "optim.momentum",
                                      "optim.clip", "trainer.batch_size", "model.hidden",
                                      "dataset.val_size", "optim.weight_decay")}
sweeps = st.sampled_from(sorted(SWEPT)).flatmap(lambda key: st.lists(
    SWEPT[key].map(str).filter(lambda v: v and not set(v) & set(",[]{}'$:=")), min_size=2,
    max_size=2, unique=True).map(lambda values: f"{key}={','.join(values)}"))


def sweep_runs_or_fails_in_one_line(tmp, swept: str) -> None:
    args = ["-m", "trainer.epochs=1", "model.hidden=[8]", "dataset.train_subset=60",
            "trainer.progress=false", "trainer.threads=1", "device=cpu",
            "~hydra.callbacks.report", swept, "hydra.sweep.dir=sweep"]
    r = run_cli("train", *args, cwd=tmp, env={"DROPBENCH_DATA": str(tmp / "data")},
                timeout=300)
    assert "Traceback" not in r.stdout + r.stderr, (swept, r.stderr)
    statuses = [json.loads(s.read_text())["status"] for s in (tmp / "sweep").rglob(
        "summary.json")]
    if r.returncode == 0:
        assert statuses == ["completed"] * 2, swept
        return
    assert r.stderr.strip().splitlines()[-1].startswith("dropbench: error: "), r.stderr
    # refused up front (no sweep dir), or each job ended with a true status
    assert set(statuses) <= {"completed", "failed", "diverged"}, (swept, statuses)
    assert (tmp / "sweep").exists() == bool(statuses), swept


@pytest.mark.slow
@settings(max_examples=25, **FUZZ)
@given(sweeps)
def test_random_sweeps_run_or_fail_in_one_line(tmp_path_factory, swept):
    sweep_runs_or_fails_in_one_line(tmp_path_factory.mktemp("sweep"), swept)
