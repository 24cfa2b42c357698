"""Where xenlive finds its own data (grub/, overlays/, guest-images/, recipes/, starter/) and where it keeps
its cache."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """xenlive's own data (grub/, overlays/, guest-images/, recipes/, starter/): installed with the package
    (the wheel puts them under xenlive/data/), else in the checkout beside the package."""
    installed = PACKAGE / "data" / name
    if installed.is_dir():
        return installed
    return PACKAGE.parent / name


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/xenlive, or ~/.cache/xenlive."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "xenlive"


def shipped_recipes() -> dict[str, Path]:
    """The recipes xenlive ships (recipes/*.yaml), by name without .yaml, sorted."""
    return {path.stem: path for path in sorted(data_dir("recipes").glob("*.yaml"), key=lambda path: path.stem)}


def find_recipe(given: Path) -> Path:
    """A recipe as named on the command line: the file, if there is one; else, for a bare name such as
    `xen-demo` or `xen-demo.yaml`, the shipped recipe of that name; else `given` (loading it says why not)."""
    if given.exists() or given.name != str(given):
        return given
    return shipped_recipes().get(given.name.removesuffix(".yaml"), given)
