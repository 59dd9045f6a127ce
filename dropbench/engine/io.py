"""Checkpoints, saved through the atomic writes of dropbench.atomic and loaded safely."""

import io
import pickle
import re
from pathlib import Path

import torch

from dropbench.atomic import atomic_write_bytes
from dropbench.rundir import RunDirRefused


def save_checkpoint(path: Path, state: dict) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: Path) -> dict:
    """A checkpoint as plain data. `weights_only=True`: torch's unpickler builds tensors,
    dicts, lists, tuples, strings and numbers and refuses anything else, so a crafted file
    cannot run code here (the trainer keeps its state to those types)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:  # torch's message names what the file asked for
        raise RunDirRefused(f"checkpoint {path} holds objects a safe load refuses "
                             f"({unsafe_detail(e)}); it was not written by dropbench: start "
                             f"the run over with trainer.overwrite=true") from None
    except Exception as e:  # truncated or foreign file: say which, and what to do
        raise RunDirRefused(f"checkpoint {path} is unreadable ({type(e).__name__}); start the "
                             f"run over with trainer.overwrite=true (instead of "
                             f"trainer.resume=true), or train in another hydra.run.dir") from e
    if not isinstance(state, dict):
        raise RunDirRefused(f"checkpoint {path} is not a dropbench checkpoint (it holds a "
                             f"{type(state).__name__}); start the run over with "
                             f"trainer.overwrite=true, or train in another hydra.run.dir")
    return state


def unsafe_detail(e: Exception) -> str:
    """The global torch refused, e.g. `builtins.exec`, out of its long multi-line message."""
    found = re.search(r"(?:GLOBAL|global) ([\w.]+)", str(e))
    return f"it asks for {found.group(1)}" if found else "not plain tensors and numbers"
