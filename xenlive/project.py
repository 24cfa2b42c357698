"""What a recipe may name: the files of its project, and xenlive's own data. Never /proc, /sys, /dev or /run.

A recipe, and every file it names, may come from someone else, and xenlive builds as root: a recipe that
names /etc as an overlay, or `../../..` on the way to a user's SSH keys, would copy the build host's files
into the image. So every file a recipe names (parent recipes, overlays, guest image recipes, their
templates and overlays) must lie, with symlinks followed, in the recipe's project, in xenlive's own data,
or in a directory the user allowed on the command line (`--allow-dir`). The kernel's and the running
system's file systems are refused whatever the user allows.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from xenlive.paths import data_dir

# Never read, whatever the user allows: the kernel's and the running system's file systems.
NEVER_READ = (Path("/proc"), Path("/sys"), Path("/dev"), Path("/run"))
ALLOW_HINT = (
    "keep what a recipe names in its project; to use a directory outside it on purpose, run with --allow-dir DIR"
)


def is_within(path: Path, tree: Path) -> bool:
    return path == tree or tree in path.parents


@dataclass(frozen=True)
class Project:
    """The trees a recipe may take files from: its project's (`root`) and those the user allowed."""

    root: Path  # real path
    allowed: tuple[Path, ...] = ()  # real paths
    shown: str = ""  # the root as messages show it: as the user named the recipe, relative or not

    @classmethod
    def at(cls, root: Path, allowed: Sequence[Path] = ()) -> Project:
        shown = os.path.join(os.path.normpath(root), "")
        return cls(Path(os.path.realpath(root)), tuple(Path(os.path.realpath(path)) for path in allowed), shown)

    def refusal(self, path: Path) -> tuple[str, str] | None:
        """Why a recipe may not use `path`, completing "overlay PATH ...", and how to fix it; None if it may."""
        real = Path(os.path.realpath(path))
        leads = f" (it leads to {real})" if real != Path(os.path.abspath(path)) else ""
        for never in NEVER_READ:
            if is_within(real, Path(os.path.realpath(never))):
                return f"is in {never}{leads}, which xenlive never reads", "name a file or directory of the project"
        shipped = ("recipes", "overlays", "guest-images")  # a recipe may extend, and name, what xenlive ships
        trusted = (self.root, *self.allowed, *(data_dir(name).resolve() for name in shipped))
        if any(is_within(real, tree) for tree in trusted):
            return None
        return f"is outside the recipe's project {self.shown or self.root}{leads}", ALLOW_HINT
