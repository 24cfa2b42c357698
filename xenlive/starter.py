"""`xenlive init DIR`: a starter project in a new directory, from the files under starter/ (xenlive's data).

Its top-level `*.j2` files (the recipe, the README) are rendered once, now, with the project's name; the rest
(the overlay, whose `.j2` file is the user's template, rendered at build time) is copied as it is.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from xenlive import __version__
from xenlive.errors import XenliveError
from xenlive.paths import data_dir
from xenlive.render import render_template

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # as iso.name takes it


class StarterError(XenliveError):
    """The starter project cannot be written there."""

    exit_code = 2


@dataclass(frozen=True)
class Starter:
    directory: Path
    name: str  # the ISO's name, and the recipe's file name without .yaml
    written: list[Path]

    @property
    def recipe(self) -> Path:
        return self.directory / f"{self.name}.yaml"


def project_name(directory: Path) -> str:
    """An ISO name from a directory's name: letters, digits, '.', '_' and '-', starting with a letter or digit."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", directory.resolve().name).strip("-._")
    return name or "xenlive-project"


def volume_label(name: str) -> str:
    """An ISO 9660 volume label from a name: 1 to 32 of A-Z, 0-9 and _."""
    return re.sub(r"[^A-Z0-9_]", "_", name.upper())[:32] or "XENLIVE"


def write_starter(directory: Path, name: str | None = None) -> Starter:
    """Write a starter project into `directory`, which must not exist or be empty."""
    if directory.is_symlink() or (directory.exists() and (not directory.is_dir() or any(directory.iterdir()))):
        raise StarterError(
            f"{directory} exists and is not an empty directory; give a new one, e.g. `xenlive init my-iso`"
        )
    name = name or project_name(directory)
    if not NAME.fullmatch(name):
        raise StarterError(f"--name {name!r}: give letters, digits, '.', '_' and '-', starting with a letter or digit")
    context = {"name": name, "label": volume_label(name), "version": __version__}
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _interfered(directory, exc) from None
    files = starter_files(name, context)
    written = [directory / rel for rel in write_new_files(directory, files)]
    return Starter(directory, name, written)


def starter_files(name: str, context: dict[str, str]) -> dict[PurePosixPath, bytes]:
    """What the starter project holds: each file's path in it and its contents."""
    source = data_dir("starter")
    files: dict[PurePosixPath, bytes] = {}
    for path in sorted(source.rglob("*")):
        rel = PurePosixPath(path.relative_to(source).as_posix())
        if path.is_dir():
            continue
        if len(rel.parts) == 1 and path.name.endswith(".j2"):
            target = PurePosixPath(f"{name}.yaml" if path.name == "recipe.yaml.j2" else path.stem)
            files[target] = render_template(path, context).encode()
        else:
            files[rel] = path.read_bytes()
    return files


_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def write_new_files(directory: Path, files: dict[PurePosixPath, bytes]) -> list[PurePosixPath]:
    """Create `files` under `directory`, never through a symlink: every directory is opened with O_NOFOLLOW
    and every file created with O_EXCL, which refuses a name that exists, a symlink included. Someone who can
    write into `directory` meanwhile (it was empty when checked) can make init fail, never write elsewhere."""
    top = _open_directory(directory, None, directory)
    try:
        for rel, data in files.items():
            parent, opened = top, []
            try:
                for i, part in enumerate(rel.parts[:-1]):
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, dir_fd=parent)
                    parent = _open_directory(part, parent, directory.joinpath(*rel.parts[: i + 1]))
                    opened.append(parent)
                try:
                    fd = os.open(rel.name, _NEW_FILE, 0o666, dir_fd=parent)
                except OSError as exc:
                    raise _interfered(directory / rel, exc) from None
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
            finally:
                for fd in opened:
                    os.close(fd)
    finally:
        os.close(top)
    return list(files)


def _open_directory(name: str | Path, dir_fd: int | None, shown: Path) -> int:
    try:
        return os.open(name, _DIRECTORY, dir_fd=dir_fd)
    except OSError as exc:
        raise _interfered(shown, exc) from None


def _interfered(path: Path, exc: OSError) -> StarterError:
    why = "it is a symbolic link" if exc.errno == errno.ELOOP else exc.strerror
    return StarterError(
        f"cannot write {path}: {why} (did something else write there meanwhile?); give a new directory, "
        "e.g. `xenlive init my-iso`"
    )
