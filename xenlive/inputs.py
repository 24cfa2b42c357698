"""Reading input files (recipes, guest image recipes, templates): regular files of bounded size only.

A recipe may come from someone else, and it names other files (`extends`, `image`, templates). A name
such as /dev/zero, a named pipe, a directory or a file of gigabytes must be refused at once, with a
reason, instead of hanging the build or filling its memory.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

# The largest input file read: the shipped recipes and guest images are under 2 KiB, templates under 4 KiB.
MAX_INPUT_BYTES = 256 * 2**10
TOO_BIG_HINT = "is it the right file? recipes and templates are a few KiB"
NAME_MAX = 255  # bytes of one name in a path (Linux's file systems)
PATH_MAX = 4096  # bytes of a path, its final NUL included


class UnusableFile(Exception):
    """A path that is not a regular file, or one too large to read.

    `reason` completes "PATH ...", `hint` says what to do about it."""

    def __init__(self, reason: str, hint: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.hint = hint


def file_kind(mode: int) -> str:
    """What a file is, in words: 'a directory', 'a named pipe (FIFO)'..."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def size_text(size: int) -> str:
    """2147483648 -> '2.0 GiB'."""
    if size < 2**10:
        return f"{size} bytes"
    if size < 2**20:
        return f"{size / 2**10:.0f} KiB"
    if size < 2**30:
        return f"{size / 2**20:.1f} MiB"
    return f"{size / 2**30:.1f} GiB"


def check_input(status: os.stat_result, limit: int = MAX_INPUT_BYTES) -> None:
    """Raise UnusableFile unless `status` is that of a regular file of at most `limit` bytes."""
    if not stat.S_ISREG(status.st_mode):
        raise UnusableFile(f"is {file_kind(status.st_mode)}, not a regular file", "name a regular file")
    if status.st_size > limit:
        raise UnusableFile(
            f"is {size_text(status.st_size)}, more than the {size_text(limit)} an input file may have", TOO_BIG_HINT
        )


def path_refusal(path: str | Path) -> tuple[str, str] | None:
    """Why the file system would refuse to look `path` up at all, completing "PATH ...", and how to fix it;
    None if it may be looked up. A name in a recipe is any text: a NUL byte, a name longer than NAME_MAX
    or a path longer than PATH_MAX would otherwise end in an exception no message expects."""
    text = os.fsencode(path)
    if b"\0" in text:
        return "holds a NUL byte, which no file name can", "remove it"
    if len(text) >= PATH_MAX:
        return f"is {len(text)} bytes long, more than a path may be ({PATH_MAX - 1})", "shorten it"
    longest = max(len(part) for part in text.split(b"/"))
    if longest > NAME_MAX:
        return f"holds a name of {longest} bytes, more than a file's name may be ({NAME_MAX})", "shorten it"
    return None


def check_input_file(path: Path, limit: int = MAX_INPUT_BYTES) -> None:
    """Raise UnusableFile unless `path` (symlinks followed) is a regular file of at most `limit` bytes.

    A missing path raises FileNotFoundError, as any OSError of stat() is passed on."""
    refused = path_refusal(path)
    if refused is not None:
        raise UnusableFile(*refused)
    check_input(os.stat(path), limit)


def read_input_file(path: Path, limit: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of `path`, a regular file of at most `limit` bytes; UnusableFile or OSError otherwise.

    The path is checked before it is opened (opening some devices does something), and the open file
    again (the path may have been replaced meanwhile); at most `limit` + 1 bytes are ever read.
    """
    check_input_file(path, limit)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as file:
        check_input(os.fstat(fd), limit)
        data = file.read(limit + 1)
    if len(data) > limit:  # it grew since
        raise UnusableFile(f"is more than the {size_text(limit)} an input file may have", TOO_BIG_HINT)
    return data
