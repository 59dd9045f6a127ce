"""One writer per run dir: the training process holds an flock() on the dir's lock file.

The kernel drops the lock when the process ends, however it ends (SIGKILL included), so a
lock is never stale. The holder writes its host and pid into the file for the message a
second process prints; the file itself stays, harmlessly, after the run. While a process holds
locks, a daemon thread touches each lock file every HEARTBEAT_S seconds, so a reader on
another host (which cannot see this host's locks) tells a live run from a dead one by the
file's age (dropbench/status.py).
"""

import fcntl
import json
import os
import socket
import threading
import time
from pathlib import Path

from dropbench import rundir
from dropbench.rundir import RunDirRefused, local_flock_holder

HEARTBEAT_S = rundir.HEARTBEAT_S


class Heartbeat:
    """One daemon thread per process touching the lock files it holds."""

    def __init__(self):
        self.paths: set[Path] = set()
        self.guard = threading.Lock()
        self.thread: threading.Thread | None = None

    def add(self, path: Path) -> None:
        with self.guard:
            self.paths.add(path)
            if self.thread is None:
                self.thread = threading.Thread(target=self.beat, name="dropbench-heartbeat",
                                               daemon=True)
                self.thread.start()

    def remove(self, path: Path) -> None:
        with self.guard:
            self.paths.discard(path)

    def beat(self) -> None:
        while True:
            time.sleep(HEARTBEAT_S)
            with self.guard:
                paths = list(self.paths)
            for path in paths:
                try:
                    os.utime(path)
                except OSError:  # the run dir vanished: the trainer reports that itself
                    pass


HEARTBEAT = Heartbeat()


class RunDirLock:
    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / rundir.LOCK
        self.fd: int | None = None
        self.created = False
        self.claimed = False  # this process signed the file: it writes the dir from here on

    def __enter__(self) -> "RunDirLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> "RunDirLock":
        """Take the lock, or refuse in one line naming who holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.created = not self.path.exists()
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self.holder()
            os.close(self.fd)
            self.fd = None
            raise RunDirRefused(
                f"{self.path.parent} is being trained by another process ({holder}); wait "
                f"for it to end, or pick another hydra.run.dir") from None
        HEARTBEAT.add(self.path)
        return self

    def holder(self) -> str:
        """Who holds the lock: the kernel's lock table names a holder on this host (the
        file may still hold the previous writer's signature while the holder checks the
        dir); the file's signature is the word of a holder on another host (NFS)."""
        local = local_flock_holder(os.fstat(self.fd).st_ino)
        try:
            info = json.loads(os.pread(self.fd, 4096, 0) or b"{}")
            signed = f"host {info['host']}, pid {info['pid']}, since {info['since']}"
        except (OSError, ValueError, KeyError, TypeError):
            info, signed = {}, None
        if local is not None:
            return signed if info.get("pid") == local else f"host {socket.gethostname()}, " \
                                                              f"pid {local}"
        return signed or "a process on another host"

    def claim(self) -> None:
        """Sign the lock file: called once this process is going to write the dir."""
        info = {"host": socket.gethostname(), "pid": os.getpid(),
                "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        data = json.dumps(info).encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)
        self.created = False  # the file now says who trained here: keep it
        self.claimed = True

    def release(self) -> None:
        if self.fd is None:
            return
        HEARTBEAT.remove(self.path)
        if self.created:  # refused before writing anything: leave the dir as it was
            self.path.unlink(missing_ok=True)
        os.close(self.fd)  # closing the last descriptor releases the flock
        self.fd = None
