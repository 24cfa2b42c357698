"""What the builders that assemble a guest from downloaded files (`netbsd`, `freebsd`, `url`) share:
unpacking release sets, laying in the image's overlay, decompressing, and packing the artifact."""

from __future__ import annotations

import gzip
import io
import lzma
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

from xenlive.builders.base import ImageJob
from xenlive.errors import BuildError
from xenlive.packages import DebPackage, write_packages
from xenlive.render import render_tree
from xenlive.tools.squashfs import make_squashfs
from xenlive.tools.tar import extract

CHUNK = 1 << 20
# The most a downloaded file may unpack to (gzip, xz): a small file that unpacks without end fills no disk.
MAX_UNPACKED = 32 << 30
MAX_UNPACKED_TEXT = "32 GiB"
# What `.j2` files of a guest image's overlay can use, and nothing else (recipes/REFERENCE.md lists it).
IMAGE_OVERLAY_CONTEXT = {"image_name": "The name of the guest image (its file name without `.yaml`)."}


def unpack_sets(files: Mapping[str, Path], tree: Path) -> list[str]:
    """Unpack every `set NAME` file into tree, in recipe order; return the set names."""
    names = []
    for role, path in files.items():
        if role.startswith("set "):
            extract(path, tree)
            names.append(role.removeprefix("set "))
    return names


def install_overlay(job: ImageJob, tree: Path) -> list[str]:
    """Lay the image's overlay into tree (`.j2` files rendered with IMAGE_OVERLAY_CONTEXT)."""
    if job.overlay is None:
        return []
    return render_tree(job.overlay, tree, {"image_name": job.name})


class UnpackError(BuildError):
    """A downloaded file unpacks to more than MAX_UNPACKED."""


def decompress(source: Path, out: Path, limit: int = MAX_UNPACKED, name: str = "") -> None:
    """Copy source (the file `name`, as its pin names it) to out, decompressing gzip and xz files (told apart
    by their magic, not their name); stop, and remove out, once it is larger than `limit` bytes."""
    with source.open("rb") as raw, out.open("wb") as dst:
        magic = raw.read(6)
        raw.seek(0)
        stream: io.BufferedIOBase | BinaryIO = raw
        if magic.startswith(b"\x1f\x8b"):
            stream = gzip.GzipFile(fileobj=raw, mode="rb")
        elif magic == b"\xfd7zXZ\x00":
            stream = lzma.LZMAFile(raw, mode="rb")  # noqa: SIM115 (closed with `raw`)
        done = 0
        while chunk := stream.read(min(CHUNK, limit - done + 1)):
            done += len(chunk)
            if done > limit:
                break
            dst.write(chunk)
    if done > limit:
        out.unlink()
        shown = MAX_UNPACKED_TEXT if limit == MAX_UNPACKED else f"{limit} bytes"
        raise UnpackError(
            f"{name or source.name} unpacks to more than {shown}, the most xenlive unpacks a downloaded file to "
            f"({source}); is it the file its pin names?"
        )


def pack_image(work: Path, staging: Path, contents: Mapping[str, str], *, epoch: int) -> None:
    """Squash the staging directory into work/image.squashfs and record `contents` in packages.tsv."""
    write_packages({name: DebPackage(version, "") for name, version in contents.items()}, work / "packages.tsv")
    make_squashfs(staging, work / "image.squashfs", all_root=True, epoch=epoch)
    shutil.rmtree(staging)
