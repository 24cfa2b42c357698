"""flock(2) on lock files and directories, as the cache uses them between concurrent builds and prune."""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path


def flock(path: Path, mode: int, *, wait: bool = True, directory: bool = False) -> int | None:
    """An open descriptor of path holding flock `mode`, or None if `wait` is False and another holds it.

    A lock file is created if missing (a directory must exist: FileNotFoundError). If the file was
    deleted or replaced while we waited (prune removes the lock files of entries it removes, holding
    their lock), lock the new one instead.
    """
    while True:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY if directory else os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, mode | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            current = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:
            return fd
        os.close(fd)
        if directory:
            raise FileNotFoundError(errno.ENOENT, "removed while waiting for its lock", str(path))
