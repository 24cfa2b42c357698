"""`xenlive init DIR`: a starter project in a new directory, from the files under starter/ (xenlive's data).

Its top-level `*.j2` files (the recipe, the README) are rendered once, now, with the project's name; the rest
(the overlay, whose `.j2` file is the user's template, rendered at build time) is copied as it is.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

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
    source = data_dir("starter")
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if path.is_dir():
            continue
        if len(rel.parts) == 1 and path.name.endswith(".j2"):
            target = directory / (f"{name}.yaml" if path.name == "recipe.yaml.j2" else path.stem)
            target.write_text(render_template(path, context))
        else:
            target = directory / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        written.append(target)
    return Starter(directory, name, written)
