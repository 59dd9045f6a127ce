"""manifest.json: where, how and with what each session of a run trained.

A run resumed on another machine has several sessions; each records its command line, host,
hardware, package versions, git state of the working directory, start and end, and the
epochs it trained. `config_sha256` hashes the run's resolved config; `data` fingerprints the
tensors the run trained on, so a resume can check it gets the same data.
"""

import hashlib
import json
import os
import platform
import shlex
import socket
import subprocess
import sys
import time
from dataclasses import fields, is_dataclass
from importlib import metadata
from pathlib import Path

import torch

from dropbench import rundir, version
from dropbench.atomic import write_json
from dropbench.engine.resume import read_json
from dropbench.machine import cpu_model

PACKAGES = ("numpy", "torchvision", "hydra-core", "omegaconf", "pandas")


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def config_sha256(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def git_state(cwd: Path) -> dict | None:
    """Commit and dirty flag of the repository the command ran in, if it ran in one."""
    def git(*args) -> str:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):  # no git, not a repo, or no commit yet
        return None
    return {"commit": commit, "dirty": dirty, "dir": str(cwd)}


def versions() -> dict:
    found = {"dropbench": version.__version__, "python": platform.python_version(),
             "torch": torch.__version__, "cuda": torch.version.cuda,
             "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available()
             else None}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def session(command: list[str], device: torch.device, first_epoch: int) -> dict:
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {
        "command": shlex.join(command),
        "cwd": os.getcwd(),
        "git": git_state(Path.cwd()),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "platform": platform.platform(),
        "cpu": {"model": cpu_model(), "cores": os.cpu_count()},
        "gpu": gpu,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "versions": versions(),
        "started": now(),
        "ended": None,
        "first_epoch": first_epoch + 1,  # the epochs this session trained: first..last
        "last_epoch": None,
    }


def tensors_of(data):
    """Every tensor a dataset bundle holds, in a fixed order."""
    if isinstance(data, torch.Tensor):
        yield data
    elif is_dataclass(data):
        for f in fields(data):
            yield from tensors_of(getattr(data, f.name))
    elif isinstance(data, (list, tuple)):
        for item in data:
            yield from tensors_of(item)
    elif isinstance(data, dict):
        for key in sorted(data):
            yield from tensors_of(data[key])


def data_fingerprint(data, device: torch.device) -> dict:
    """sha256 of every tensor, and of the integer ones alone (labels, token ids): floats
    computed on another kind of device may differ in the last bit, integers never do."""
    every, ints = hashlib.sha256(), hashlib.sha256()
    for t in tensors_of(data):
        raw = t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy()  # no copy
        header = f"{t.dtype}{tuple(t.shape)}".encode()
        every.update(header)
        every.update(raw)
        ints.update(header)
        if not t.is_floating_point():
            ints.update(raw)
    return {"sha256": every.hexdigest(), "int_sha256": ints.hexdigest(),
            "device_type": device.type}


class Manifest:
    def __init__(self, run_dir: Path, config: dict, fresh: bool):
        self.path = Path(run_dir) / rundir.MANIFEST
        old = {} if fresh else read_json(self.path) or {}
        self.record = {"format_version": rundir.FORMAT_VERSION,
                       "config_sha256": config_sha256(config),
                       "data": old.get("data"), "sessions": list(old.get("sessions") or [])}

    def start(self, command: list[str], device: torch.device, epoch: int, data: dict) -> None:
        self.record["data"] = data
        self.record["sessions"].append(session(command, device, epoch))
        write_json(self.path, self.record)

    def end(self, epoch: int, status: str) -> None:
        if not self.record["sessions"]:
            return
        self.record["sessions"][-1].update(ended=now(), last_epoch=epoch, status=status)
        write_json(self.path, self.record)


def command_line() -> list[str]:
    """The command as typed: the CLI names itself `dropbench train` in sys.argv[0]."""
    if sys.argv[0].startswith("dropbench"):
        return [*sys.argv[0].split(), *sys.argv[1:]]
    return list(sys.argv)
