"""Where xenlive finds its own data (grub/, overlays/, guest-images/) and where it keeps its cache."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """xenlive's own data (grub/, overlays/, guest-images/): the checkout, or the installed package."""
    checkout = PACKAGE.parent / name
    if checkout.is_dir():
        return checkout
    return PACKAGE / "data" / name


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/xenlive, or ~/.cache/xenlive."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "xenlive"
