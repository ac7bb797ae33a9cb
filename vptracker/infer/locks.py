"""File locks: one process per unit of work, one process at a time deciding what a folder holds.

``flock`` locks belong to an open file, so a second process (or a second open in one process)
cannot take a held lock, and the kernel drops a lock when its holder dies: a killed run leaves
nothing to clean up. On Linux NFS clients ``flock`` is carried as a whole-file POSIX lock, which
the server sees from every node of a shared output folder.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

LOCKS_DIR = ".locks"


def holder_text() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()}"


def try_lock(path: str | Path) -> int | None:
    """Takes the lock at ``path`` without waiting: its descriptor, or None when another holds it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, (holder_text() + "\n").encode())   # for the message another process prints
    return fd


def release(fd: int | None) -> None:
    if fd is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def holder(path: str | Path) -> str:
    """Who holds (or last held) the lock at ``path``, as written by :func:`try_lock`."""
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").strip() or "another process"
    except OSError:
        return "another process"


@contextlib.contextmanager
def folder_lock(path: str | Path, timeout_s: float = 600.0, poll_s: float = 0.1) -> Iterator[None]:
    """Holds the lock at ``path``, waiting up to ``timeout_s`` (setup steps take seconds, not hours)."""
    deadline = time.monotonic() + timeout_s
    while (fd := try_lock(path)) is None:
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{path}: still locked by {holder(path)} after {timeout_s:.0f} s")
        time.sleep(poll_s)
    try:
        yield
    finally:
        release(fd)
