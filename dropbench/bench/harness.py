"""Timing, memory and bookkeeping shared by every benchmark case.

A case is a list of variants, timed in interleaved rounds (see `measure_all`). A row records
the seconds of every repetition; rates (samples/s, tokens/s) use the median. Ratios are
computed from the rows' medians only.
"""

import gc
import os
import platform
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch

from dropbench.machine import cpu_model, load_average


@dataclass
class Row:
    case: str  # e.g. "mlp"
    name: str  # e.g. "dropbench trainer"
    unit: str  # what `work` counts: "samples" or "tokens"
    work: int  # units processed in ONE repetition
    seconds: list[float] = field(default_factory=list)  # one per timed repetition
    available: bool = True
    note: str = ""
    peak_rss_mb: float | None = None  # whole process, while this variant ran
    peak_cuda_mb: float | None = None  # torch's CUDA allocator, this variant only

    @property
    def key(self) -> str:
        return f"{self.case}/{self.name}"

    @property
    def median(self) -> float:
        s = sorted(self.seconds)
        mid = len(s) // 2
        return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2

    @property
    def rate(self) -> float:
        """Units per second at the median repetition."""
        return self.work / self.median

    def to_dict(self) -> dict:
        d = asdict(self)
        if self.available and self.seconds:
            d.update(min_s=min(self.seconds), median_s=self.median, max_s=max(self.seconds),
                     rate=self.rate)
        return d


@dataclass
class Ratio:
    """value = rate(numerator) / rate(denominator), checked against `target` with `op`.

    Speed-ups put the faster side on top; overheads ("scheme time / baseline time") put the
    baseline on top; a fraction of the matmul limit is rate(run) / rate(limit)."""

    label: str
    numerator: str  # row keys
    denominator: str
    op: str | None  # ">=" or "<=", None: reported without a target
    target: float | None
    value: float | None = None
    met: bool | None = None

    def compute(self, rows: dict[str, Row]) -> "Ratio":
        a, b = rows.get(self.numerator), rows.get(self.denominator)
        if a and b and a.available and b.available and a.seconds and b.seconds:
            self.value = a.rate / b.rate
            if self.op == ">=":
                self.met = self.value >= self.target
            elif self.op == "<=":
                self.met = self.value <= self.target
        return self


@dataclass
class Check:
    """A measured value against an absolute target: seconds of a row's median (`row` set),
    or a value the case computed itself (e.g. how far two launchers' results differ)."""

    label: str
    op: str  # "<=" or ">="
    target: float
    row: str | None = None
    value: float | None = None
    met: bool | None = None

    def compute(self, rows: dict[str, Row]) -> "Check":
        r = rows.get(self.row) if self.row else None
        if r is not None and r.available and r.seconds:
            self.value = r.median
        if self.value is not None:
            self.met = self.value <= self.target if self.op == "<=" else self.value >= self.target
        return self


def unavailable(case: str, name: str, unit: str, why: str) -> Row:
    return Row(case, name, unit, 0, available=False, note=f"not available: {why}")


# --- memory ----------------------------------------------------------------------------------
def reset_peak_rss() -> None:
    """Linux lets a process reset its own peak RSS (VmHWM) by writing 5 to clear_refs."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # elsewhere the peak stays the process-lifetime peak (ru_maxrss)


def peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 / (1024 if platform.system() == "Darwin" else 1)  # macOS reports bytes


class Timed(NamedTuple):
    wall: float  # seconds
    cpu: float  # CPU seconds of the command and the children it waited for
    peak_rss_mb: float  # the command's peak RSS


# Runs the command and writes its wall time, CPU time and peak RSS to a file. Linux starts a
# process's peak RSS at its parent's when it execs: timed straight from this process (torch
# loaded, a plain loop's tensors allocated) a small command reads as this process's size.
# Started from this small Python instead, it reads as its own.
MEASURE = """
import os, subprocess, sys, time
start = time.perf_counter()
command = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(command.pid, 0)
wall = time.perf_counter() - start
with open(sys.argv[1], "w") as out:
    out.write(f"{wall} {usage.ru_utime + usage.ru_stime} {usage.ru_maxrss}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_timed(argv: list[str], cwd: Path, env: dict | None = None,
              timeout: float = 3600) -> Timed:
    """Run a command to its end and time it. Raises RuntimeError with the command's last line
    of output when it fails or runs past `timeout` seconds."""
    import signal
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        measured, log = Path(tmp) / "measured", Path(tmp) / "output"
        with open(log, "w") as out:
            proc = subprocess.Popen([sys.executable, "-S", "-c", MEASURE, str(measured),
                                     *argv], cwd=cwd, env=env, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the command with its measurer
                proc.wait()
                raise RuntimeError(f"{' '.join(argv[:6])} ... ran past {timeout:g} s") from None
        if proc.returncode != 0 or not measured.exists():
            last = (log.read_text().strip().splitlines() or ["(no output)"])[-1]
            raise RuntimeError(f"{' '.join(argv[:6])} ... failed: {last}")
        wall, cpu, maxrss = (float(v) for v in measured.read_text().split())
    rss = maxrss / (2**20 if platform.system() == "Darwin" else 2**10)  # B / kB
    return Timed(wall, cpu, rss)


def rotated(items: list, r: int) -> list:
    """items in the order of round r: rotated by r, so no variant always runs first."""
    return items[r % len(items):] + items[: r % len(items)] if items else []


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --- measuring the variants of a case -------------------------------------------------------
def measure_all(variants: list[tuple[Row, Callable]], device: torch.device, warmup: int,
                reps: int) -> list[Row]:
    """Time every variant `reps` times, interleaved: round r runs each variant once, in an
    order rotated by r, so a change in machine load hits all variants alike instead of
    skewing the ratios between them.

    prepare() -> (run, warm): `run()` does one repetition (row.work units), `warm()` a cheaper
    pass through the same code (kernel choice, allocator, compile). Each round builds the
    variant afresh, warms it up, times one run and frees it, so its peak memory (the maximum
    over rounds) counts only this variant next to the case's shared data.
    """
    for r in range(reps if variants else 0):
        for row, prepare in rotated(variants, r):
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            reset_peak_rss()
            run, warm = prepare()
            for _ in range(warmup):
                warm()
            sync(device)
            start = time.perf_counter()
            run()
            sync(device)
            row.seconds.append(time.perf_counter() - start)
            row.peak_rss_mb = max(row.peak_rss_mb or 0.0, round(peak_rss_mb(), 1))
            if device.type == "cuda":
                cuda_mb = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
                row.peak_cuda_mb = max(row.peak_cuda_mb or 0.0, cuda_mb)
            del run, warm
    gc.collect()
    return [row for row, _ in variants]


# --- the machine -------------------------------------------------------------------------------
def machine_info(device: torch.device) -> dict:
    info = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "load_average_1min_start": load_average(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info
