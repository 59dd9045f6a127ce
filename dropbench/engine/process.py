"""Process-wide settings a run changes, restored when it ends.

The jobs of a sequential multirun share one process: without this, a job that asked for
deterministic kernels or one thread would pass them on to the jobs after it.
"""

import contextlib
import os

import torch

from dropbench.engine.accel import restore_freed_memory_defaults

ENV_KEYS = ("CUBLAS_WORKSPACE_CONFIG",)


@contextlib.contextmanager
def process_state():
    saved = {
        "threads": torch.get_num_threads(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "matmul_precision": torch.get_float32_matmul_precision(),
        "env": {k: os.environ.get(k) for k in ENV_KEYS},
    }
    umask = os.umask(0o022)
    os.umask(umask)
    try:
        yield
    finally:
        torch.set_num_threads(saved["threads"])
        # only when changed: these setters import torch._dynamo (as costly as torch itself)
        if (torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled()) != (
                saved["deterministic"], saved["warn_only"]):
            torch.use_deterministic_algorithms(saved["deterministic"],
                                               warn_only=saved["warn_only"])
        torch.backends.cudnn.benchmark = saved["cudnn_benchmark"]
        torch.backends.cudnn.deterministic = saved["cudnn_deterministic"]
        if torch.get_float32_matmul_precision() != saved["matmul_precision"]:
            torch.set_float32_matmul_precision(saved["matmul_precision"])
        for key, value in saved["env"].items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        os.umask(umask)
        restore_freed_memory_defaults()


def describe() -> dict:
    """The settings in force now, for summary.json."""
    return {"threads": torch.get_num_threads(),
            "deterministic": torch.are_deterministic_algorithms_enabled(),
            "cudnn_benchmark": torch.backends.cudnn.benchmark}
