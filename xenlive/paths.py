"""Where xenlive finds its own data (grub/, overlays/, guest-images/, recipes/, starter/) and where it keeps
its cache."""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

from xenlive import __version__
from xenlive.data_archive import ARCHIVE, DataArchiveError, archive_digest, archive_listing, listing, unpack
from xenlive.errors import XenliveError

PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """xenlive's own data (grub/, overlays/, guest-images/, recipes/, starter/): in a checkout, beside the
    package; installed, unpacked from the package's archive (installed_data())."""
    archive = PACKAGE / ARCHIVE
    if archive.is_file():
        return installed_data(archive) / name
    return PACKAGE.parent / name


def recorded(path: Path) -> str:
    """A file as a build's manifest names it: one of an installed xenlive's data as `xenlive:TREE/FILE` (which
    xenlive built the ISO is in the manifest; where it was installed or unpacked is not), any other as given."""
    archive = PACKAGE / ARCHIVE
    if archive.is_file() and os.path.abspath(path).startswith(os.path.join(installed_data(archive), "")):
        return "xenlive:" + Path(os.path.abspath(path)).relative_to(installed_data(archive)).as_posix()
    return str(path)


def data_cache_dir() -> Path:
    """Where an installed xenlive unpacks its data: beside the stage cache, not in it (`cache prune` keeps it)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "xenlive-data"


class DataUnpackError(XenliveError):
    """The package's data could not be unpacked into the user's cache."""


@functools.cache
def installed_data(archive: Path) -> Path:
    """The directory holding the data trees of the package's archive (data_archive.py says why an archive):
    DATA_CACHE/VERSION-DIGEST, unpacked on first use and renamed into place whole, so that a build never sees
    half a tree. Checked against the archive once in each process: one that differs (changed by hand, or
    left by an interrupted removal) is unpacked again."""
    wanted = archive_listing(archive)
    final = data_cache_dir() / f"{__version__}-{archive_digest(archive)[:16]}"
    if final.is_dir() and listing(final) == wanted:
        return final
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{final.name}.", dir=final.parent) as fresh:
            unpack(archive, Path(fresh) / "data")
            if final.is_dir() and listing(final) == wanted:  # another process unpacked it meanwhile
                return final
            if final.exists() or final.is_symlink():  # not what the archive holds: moved aside, removed with fresh
                final.rename(Path(fresh) / "stale")
            try:
                (Path(fresh) / "data").rename(final)
            except OSError:  # another process put its own in place meanwhile
                if not (final.is_dir() and listing(final) == wanted):
                    raise
    except (OSError, DataArchiveError) as err:
        raise DataUnpackError(f"cannot unpack xenlive's data into {final}: {err}") from err
    return final


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
