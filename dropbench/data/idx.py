"""MNIST's IDX format, unsigned-byte files only: a zero magic, type 0x08, the number of
dimensions, the sizes as big-endian uint32, then the bytes. One reader and one writer for the
loader, the real-sample carver, the bench and the tests."""

import math
import struct
from pathlib import Path

import numpy as np


class IdxError(ValueError):
    """The bytes are not a whole IDX file of unsigned bytes; the message says how."""


def parse_idx(blob: bytes | bytearray) -> np.ndarray:
    """An IDX file's bytes -> an array of its declared shape (a view of a bytearray, a
    read-only view of bytes)."""
    if len(blob) < 4 or blob[:2] != b"\x00\x00" or blob[2] != 0x08 or not 1 <= blob[3] <= 3:
        raise IdxError("not an IDX file of unsigned bytes")
    ndim = blob[3]
    header = 4 + 4 * ndim
    dims = struct.unpack(f">{ndim}I", bytes(blob[4:header]).ljust(4 * ndim, b"\0"))
    if len(blob) != header + math.prod(dims):
        raise IdxError(f"{len(blob)} bytes where its header promises {header + math.prod(dims)}")
    return np.frombuffer(blob, dtype=np.uint8, offset=header).reshape(dims)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write `array` (values 0-255) as an IDX file, atomically (a temporary file, renamed)."""
    path = Path(path)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I",
                                                                       *array.shape)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(header + np.asarray(array).astype(np.uint8).tobytes())
    tmp.replace(path)
