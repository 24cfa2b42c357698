"""A full disk: work that failed for lack of space becomes one line naming what, where and how much."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from xenlive.errors import BuildError, ToolError

MIB = 2**20
# A tool that failed while its file system had less than this free is taken to have failed for lack of space.
LOW_SPACE = MIB
# How tools say so: most in the C library's words; xorriso checks the free space before it writes the ISO.
FULL = ("No space left on device", "exceeds free space on media")


def space_error(what: str, exc: BaseException, where: Path, needed: int) -> BuildError | None:
    """The one-line error for work that failed because its file system is full, or None if it did not.

    Python reports ENOSPC itself; an external tool only says so on its stderr (which we may not have),
    so a tool failure while `where` has under LOW_SPACE free counts as a full disk too.
    """
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        # The file named may be elsewhere (copyfile names its source too): name the fullest file system.
        named = [Path(os.fsdecode(f)) for f in (exc.filename, exc.filename2) if f]
        if not any(f.is_relative_to(where) for f in named):
            where = min([where, *(f if f.is_dir() else f.parent for f in named)], key=free_bytes)
    elif not (isinstance(exc, ToolError) and (any(say in str(exc) for say in FULL) or free_bytes(where) < LOW_SPACE)):
        return None
    free = free_bytes(where)
    return BuildError(
        f"{what}: no space left on device in {where} (needs about {-(-needed // MIB)} MiB, "
        f"{free // MIB} MiB free; free some space and rerun)"
    )


def free_bytes(path: Path) -> int:
    """Free space of the file system holding path (or its nearest existing parent)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


@contextlib.contextmanager
def full_disk_reported(what: str, where: Path, needed: Callable[[], int]) -> Iterator[None]:
    """Turn a failure for lack of space inside the block into space_error's one line."""
    try:
        yield
    except (OSError, ToolError) as exc:
        error = space_error(what, exc, where, needed())
        if error is None:
            raise
        raise error from exc
