"""Pinned files: what a guest image downloads, named by the digest it must have (url, "ALGO:HEX", file name)."""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field

# Digest algorithms a pin may use, with the length of their hex digest.
ALGORITHMS: dict[str, int] = {"sha256": 64, "sha512": 128}


@dataclass(frozen=True)
class Pinned:
    """A file to fetch: where from, what it must hash to, and the file name it goes by (for --artifacts)."""

    url: str
    digest: str  # "sha256:<hex>" or "sha512:<hex>"
    name: str = field(default="")

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
