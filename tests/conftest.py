"""Shared test helpers: run the real CLI in a subprocess, compose configs, seeded generators."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args, cwd, env=None, timeout=300) -> subprocess.CompletedProcess:
    """Run `dropbench ARGS` as a user would, in a subprocess; never raises on exit status."""
    # One torch thread: the test models are tiny, and spinning thread pools crawl on a busy CPU.
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", **(env or {})}
    full_env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", "dropbench.cli", *map(str, args)],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture
def cli(tmp_path):
    """`cli("train", "trainer.epochs=1")` runs in tmp_path with data_dir inside it."""

    def call(*args, env=None, timeout=300):
        env = {"DROPBENCH_DATA": str(tmp_path / "data"), **(env or {})}
        return run_cli(*args, cwd=tmp_path, env=env, timeout=timeout)

    return call


@pytest.fixture
def compose():
    """compose(["model=mlp", ...]) -> the composed, schema-checked config."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from dropbench.config import config_dir, register_schemas

    register_schemas()

    def _compose(overrides=()):
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            return hydra_compose(config_name="config", overrides=list(overrides))

    return _compose


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small in-process tensors: extra threads only fight over a busy machine's cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
