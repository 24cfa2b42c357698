"""Pinned files: what a guest image downloads, named by the digest it must have.

`Pinned` is one file to fetch (url, "ALGO:HEX", file name); `PinnedFile` is how a guest image recipe writes it.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import Field

from xenlive.yamlpos import Model

# The most xenlive downloads for one pinned file that states no size (download.py stops there).
MAX_DOWNLOAD = 8 << 30
MAX_DOWNLOAD_TEXT = "8 GiB"
MAX_PINNED_SIZE = 1 << 40  # what a pin may state: 1 TiB

# Digest algorithms a pin may use, with the length of their hex digest.
ALGORITHMS: dict[str, int] = {"sha256": 64, "sha512": 128}


@dataclass(frozen=True)
class Pinned:
    """A file to fetch: where from, what it must hash to, and the file name it goes by (for --artifacts)."""

    url: str
    digest: str  # "sha256:<hex>" or "sha512:<hex>"
    name: str = field(default="")
    size: int | None = None  # bytes, if the pin states it: a download stops there

    def __post_init__(self) -> None:
        algo, sep, hexdigest = self.digest.partition(":")
        if not sep or algo not in ALGORITHMS:
            raise ValueError(
                f"digest {self.digest!r} of {self.url}: must be ALGO:HEX with ALGO one of {', '.join(ALGORITHMS)}"
            )
        want = ALGORITHMS[algo]
        if len(hexdigest) != want or not re.fullmatch(r"[0-9a-fA-F]+", hexdigest):
            raise ValueError(f"digest {self.digest!r} of {self.url}: a {algo} digest is {want} hex digits")
        object.__setattr__(self, "digest", f"{algo}:{hexdigest.lower()}")
        scheme = urllib.parse.urlsplit(self.url).scheme
        if scheme not in ("http", "https", "file"):
            raise ValueError(f"url {self.url!r}: must start with http://, https:// or file://")
        if self.name:
            if self.name in (".", "..") or "/" in self.name:
                raise ValueError(f"name {self.name!r} of {self.url}: must be a plain file name")
            return
        name = urllib.parse.unquote(urllib.parse.urlsplit(self.url).path.rsplit("/", 1)[-1])
        if not name or name in (".", "..") or "/" in name:
            raise ValueError(f"url {self.url!r}: does not end in a file name; give the name explicitly")
        object.__setattr__(self, "name", name)

    @property
    def algorithm(self) -> str:
        return self.digest.partition(":")[0]

    @property
    def hexdigest(self) -> str:
        return self.digest.partition(":")[2]


HEX64: dict[str, Any] = {"form": "64 hex digits (the sha256 of the file)"}
HEX128: dict[str, Any] = {"form": "128 hex digits (the sha512 of the file)"}


class PinnedFile(Model):
    """One downloaded file: where it comes from and the digest it must have. Give `sha256` or `sha512`."""

    url: Annotated[str, Field(pattern=r"^(https?|file)://\S+$")] = Field(
        description="Where to download it. With `build --artifacts DIR_OR_URL` the same file name is looked "
        "up there first.",
        json_schema_extra={"form": "an http://, https:// or file:// URL without spaces"},
    )
    sha256: Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$")] | None = Field(
        None, description="SHA-256 of the file, as published beside it.", json_schema_extra=HEX64
    )
    sha512: Annotated[str, Field(pattern=r"^[0-9a-fA-F]{128}$")] | None = Field(
        None, description="SHA-512 of the file, as in the release's SHA512 file.", json_schema_extra=HEX128
    )
    size: Annotated[int, Field(ge=1, le=MAX_PINNED_SIZE)] | None = Field(
        None,
        description="The file's size in bytes. A download stops as soon as it is larger, or announces more. "
        f"Without it, a download stops at {MAX_DOWNLOAD_TEXT}, the most xenlive downloads for one file.",
        json_schema_extra={"default_text": "none", "form": "a number of bytes, from 1"},
    )

    def pinned(self) -> Pinned:
        digest = f"sha256:{self.sha256}" if self.sha256 else f"sha512:{self.sha512}"
        return Pinned(url=self.url, digest=digest, size=self.size)
