"""The CUDA fast path: mixed precision (`trainer.amp`) and torch.compile (`trainer.compile`).

Both only pay off on a GPU. On CPU they are no-ops with a warning in train.log: bf16 autocast
on a CPU is mostly slower than float32, and compiling needs a C++ toolchain and minutes of
warm-up for runs that are short anyway. The run then trains exactly as with amp=off,
compile=false.
"""

import contextlib
import ctypes
import ctypes.util
import logging
import os
import sys
from pathlib import Path

import torch

from dropbench.errors import DropbenchError

log = logging.getLogger("dropbench")

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def mixed_precision(amp: str, device: torch.device):
    """(autocast context factory, GradScaler) for trainer.amp = off | bf16 | fp16.

    fp16 needs loss scaling so small gradients do not flush to zero; bf16 has float32's
    exponent range and does not. A disabled GradScaler passes everything through unchanged,
    so the training step can call it unconditionally.
    """
    enabled = amp != "off" and device.type == "cuda"
    if amp != "off" and not enabled:
        log.warning("trainer.amp=%s has no effect on %s; training in float32", amp, device)
    if enabled and amp == "bf16" and not torch.cuda.is_bf16_supported():
        raise DropbenchError("trainer.amp=bf16 needs a GPU with bfloat16 support (Ampere or "
                             "newer); use trainer.amp=fp16 or trainer.amp=off")
    scaler = torch.amp.GradScaler("cuda", enabled=enabled and amp == "fp16")
    if not enabled:
        return contextlib.nullcontext, scaler
    return (lambda: torch.autocast("cuda", dtype=AMP_DTYPES[amp])), scaler


def maybe_compile(model: torch.nn.Module, compile: bool, device: torch.device):
    """The callable the loop runs the model through: torch.compile(model) on CUDA when asked.

    The compiled wrapper shares its parameters with `model`, so checkpoints, max-norm and the
    dropout hooks keep using the plain module (its state_dict keys stay unprefixed).
    """
    if not compile:
        return model
    if device.type != "cuda":
        log.warning("trainer.compile=true has no effect on %s; running eagerly", device)
        return model
    log.info("compiling the model with torch.compile (the first batches are slow)")
    return torch.compile(model)


def keep_freed_memory() -> None:
    """Stop glibc from handing big freed blocks back to the OS between training steps.

    By default glibc serves large allocations with fresh mmap'd pages and trims the top of
    its heap when it is freed, so each step's large tensors (an LSTM LM's 16 MB logits and
    their gradient) come back as new pages faulted in one by one on first touch. Measured
    on the small LSTM LM (docs/benchmarks.md): 3 windows took 0.39 s with the default and
    0.26 s with blocks up to 32 MB (glibc's maximum) kept on the heap and trimming off.
    Process-wide; Linux/glibc only, silently nothing elsewhere. A run undoes it when it ends
    (restore_freed_memory_defaults).
    """
    _mallopt(mmap_threshold=32 * 2**20, trim_threshold=2**30)


def restore_freed_memory_defaults() -> None:
    """glibc's documented defaults (128 KiB each); its dynamic mmap threshold stays off."""
    _mallopt(mmap_threshold=128 * 2**10, trim_threshold=128 * 2**10)


def _mallopt(mmap_threshold: int, trim_threshold: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
        libc.mallopt(m_mmap_threshold, mmap_threshold)
        libc.mallopt(m_trim_threshold, trim_threshold)
    except (OSError, AttributeError):
        pass


def default_threads() -> int:
    """Torch CPU threads for a run that did not set trainer.threads: one per core that other
    processes leave free, at least one. A thread pool larger than the free cores spins at
    every parallel region, waiting for threads the scheduler has parked: on this 2-core
    machine at load 11, one step of 12 stacked MLPs cost 15x more CPU time with 2 threads
    than with 1 (docs/benchmarks.md). OMP_NUM_THREADS, when set, is followed instead: a
    thread count that follows the load would make two runs of one config differ in the last
    bits."""
    if os.environ.get("OMP_NUM_THREADS"):  # the user's or the launcher's choice stands
        return torch.get_num_threads()
    cores = os.cpu_count() or 1
    busy = others_load()
    threads = cores if busy is None else max(1, min(cores, round(cores - busy)))
    if threads < cores:
        log.info("%d torch thread(s): other processes keep %.1f of %d cores busy (set "
                 "trainer.threads to choose)", threads, busy, cores)
    return threads


def others_load() -> float | None:
    """Cores kept busy by other processes: the smaller of the 1-minute load average and the
    threads runnable right now outside this process (the average alone would count this
    process's own earlier jobs of a sweep). None where /proc is missing."""
    try:
        fields = Path("/proc/loadavg").read_text().split()
        load1, runnable = float(fields[0]), int(fields[3].split("/")[0])
        own = sum(task_state(t) == "R" for t in Path("/proc/self/task").iterdir())
    except (OSError, ValueError, IndexError):
        return None
    return float(min(load1, max(0, runnable - own)))


def task_state(task: Path) -> str:
    """A thread's scheduler state letter (R = running or runnable) from its stat file."""
    try:
        return task.joinpath("stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return "?"
