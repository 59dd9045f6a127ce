"""Config fuzzing: random override lists either run a tiny job or end in one clear line."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import run_cli

junk = st.text(alphabet="ab01.,-[]{}$:=' ", min_size=0, max_size=6)
numbers = st.one_of(st.integers(-3, 3), st.floats(-1.5, 1.5, allow_nan=False).map(
    lambda x: round(x, 2)))
VALUES = {
    "dropout.p": st.one_of(numbers, st.lists(numbers, max_size=3).map(
        lambda v: "[" + ",".join(map(str, v)) + "]"), junk),
    "dropout.p_input": st.one_of(numbers, junk),
    "trainer.epochs": st.one_of(st.integers(-2, 1), junk),
    "trainer.batch_size": st.one_of(st.integers(-1, 64), junk),
    "trainer.patience": st.one_of(st.integers(-1, 2), st.just("null")),
    "optim.lr": st.one_of(numbers, st.just("1e9"), junk),
    "optim.name": st.sampled_from(["sgd", "adam", "adamw", "lbfgs"]),
    "optim.schedule": st.sampled_from(["none", "step", "cosine", "linear"]),
    "optim.max_norm": st.one_of(numbers, st.just("null")),
    "model.activation": st.sampled_from(["relu", "tanh", "sigmoid", "swish"]),
    "model.hidden": st.sampled_from(["[8]", "[]", "[0]", "[8,4]", "x", "8"]),
    "dataset.val_size": st.sampled_from([0, 1, 50, 5000]),
    "dataset.train_subset": st.sampled_from(["null", 0, 10, 100]),
    "dropout": st.sampled_from(["none", "standard", "spatial", "dropblock", "bogus"]),
    "model": st.sampled_from(["mlp", "lenet", "bogus"]),
    "dataset": st.sampled_from(["digits", "nope"]),
    "device": st.sampled_from(["cpu", "tpu", "auto"]),
    "seed": st.one_of(st.integers(-5, 5), junk),
    "dropout.typo": numbers,
    "trainer.epoch": numbers,
}
overrides = st.lists(
    st.sampled_from(sorted(VALUES)).flatmap(
        lambda key: VALUES[key].map(lambda value: f"{key}={value}")),
    min_size=1, max_size=4,
)


FUZZ = {"deadline": None, "derandomize": True,
        "suppress_health_check": [HealthCheck.function_scoped_fixture]}


def run_or_fail_in_one_line(tmp, drawn) -> None:
    # tiny jobs: the drawn overrides come last, so they win over these
    args = ["trainer.epochs=1", "model.hidden=[8]", "dataset.train_subset=100",
            "trainer.progress=false", "device=cpu", *drawn]
    r = run_cli("train", *args, "hydra.run.dir=run", cwd=tmp,
                env={"DROPBENCH_DATA": str(tmp / "data")}, timeout=120)
    assert "Traceback" not in r.stdout + r.stderr, (drawn, r.stderr)
    if r.returncode == 0:
        assert json.loads((tmp / "run" / "summary.json").read_text())["status"] == "completed"
    else:
        assert r.returncode == 2, (drawn, r.returncode, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("dropbench: error: "), (drawn, r.stderr)


@settings(max_examples=12, **FUZZ)
@given(overrides)
def test_random_overrides_run_or_fail_in_one_line(tmp_path_factory, drawn):
    run_or_fail_in_one_line(tmp_path_factory.mktemp("fuzz"), drawn)


@pytest.mark.slow
@settings(max_examples=60, **FUZZ)
@given(overrides)
def test_many_random_overrides(tmp_path_factory, drawn):
    run_or_fail_in_one_line(tmp_path_factory.mktemp("fuzz"), drawn)
