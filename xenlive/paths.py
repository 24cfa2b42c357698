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
