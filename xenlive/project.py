"""What a recipe may name: the files of its project, and xenlive's own data. Never /proc, /sys, /dev or /run.

A recipe, and every file it names, may come from someone else, and xenlive builds as root: a recipe that
names /etc as an overlay, or `../../..` on the way to a user's SSH keys, would copy the build host's files
into the image. So every file a recipe names (parent recipes, overlays, guest image recipes, their
templates and overlays) must lie, with symlinks followed, in the recipe's project, in xenlive's own data,
or in a directory the user allowed on the command line (`--allow-dir`). The kernel's and the running
system's file systems are refused whatever the user allows.

A recipe's project is the nearest directory above it that holds a MARKER file (`xenlive init` writes one),
else the recipe's own directory: never a directory above it by default, which for a project made in ~/myiso
would be the home directory, with the user's SSH keys in it.
"""

from __future__ import annotations

import os
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from xenlive.paths import data_dir

# Never read, whatever the user allows: the kernel's and the running system's file systems.
NEVER_READ = (Path("/proc"), Path("/sys"), Path("/dev"), Path("/run"))
ALLOW_HINT = (
    "keep what a recipe names in its project; to use a directory outside it on purpose, run with --allow-dir DIR"
)
# The file that marks the top directory of a project (its content is not read).
MARKER = "xenlive.project"


def find_project_root(recipe_path: Path) -> tuple[Path, bool]:
    """The project of a recipe: the nearest directory at or above the recipe's own that holds MARKER, and
    True; else the recipe's own directory, and False. Paths stay relative when the recipe's path is.

    A marker in a directory anyone may write to (such as /tmp) is not taken: another user could have put it
    there."""
    here = directory = recipe_path.parent
    while True:
        marker = directory / MARKER
        if marker.is_file() and not _anyone_writes(directory):
            return directory, True
        up = Path(os.path.normpath(directory / os.pardir))
        if os.path.abspath(up) == os.path.abspath(directory):
            return here, False
        directory = up


def _anyone_writes(directory: Path) -> bool:
    try:
        return bool(directory.stat().st_mode & 0o002)
    except OSError:
        return True


def is_within(path: Path, tree: Path) -> bool:
    return path == tree or tree in path.parents


@dataclass(frozen=True)
class Project:
    """The trees a recipe may take files from: its project's (`root`) and those the user allowed."""

    root: Path  # real path
    allowed: tuple[Path, ...] = ()  # real paths
    shown: str = ""  # the root as messages show it: as the user named the recipe, relative or not
    marked: bool = True  # whether the root holds MARKER (else it is the recipe's own directory)

    @classmethod
    def at(cls, root: Path, allowed: Sequence[Path] = (), marked: bool = True) -> Project:
        shown = os.path.join(os.path.normpath(root), "")
        allow = tuple(Path(os.path.realpath(path)) for path in allowed)
        return cls(Path(os.path.realpath(root)), allow, shown, marked)

    @classmethod
    def of(cls, recipe_path: Path, allowed: Sequence[Path] = ()) -> Project:
        """The project of a recipe (find_project_root())."""
        root, marked = find_project_root(recipe_path)
        return cls.at(root, allowed, marked)

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
        return f"is outside the recipe's project {self.shown or self.root}{leads}", self._hint(real)

    def url_refusal(self, url: str) -> tuple[str, str] | None:
        """Why a recipe may not name `url` (a pin, an archive), completing "URL ...", and how to fix it; None
        if it may. Only file:// URLs are checked: they are files of the build host, confined as an overlay is."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "file":
            return None
        if parts.netloc not in ("", "localhost"):
            return "names another host, not a file of this one", "write a local file as file:///PATH"
        return self.refusal(Path(urllib.request.url2pathname(parts.path)))

    def _hint(self, real: Path) -> str:
        if self.marked:
            return ALLOW_HINT
        top = Path(os.path.commonpath([self.root, real]))
        if top == Path("/"):
            return ALLOW_HINT
        return (
            f"no {MARKER} was found above the recipe, so its project is its own directory; if {top} is the top "
            f"of your project (never your home directory), mark it with an empty file {top / MARKER}, or run "
            "with --allow-dir DIR"
        )
