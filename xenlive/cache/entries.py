"""A cache entry's own manifest: the size and sha256 of each of its files, checked on every lookup.

Hashing every file of every entry costs about a second for the demo; a stamp beside the manifest records
the signature (size, times, inode) each file had when last hashed, so that an unchanged file is not hashed
again.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xenlive.cache.keys import StageInputs, canonical_json, key_of
from xenlive.fsutil import atomic_path, sha256_file, walk_files

MANIFEST = "manifest.json"
# Verified digests of an entry's files, keyed by (size, mtime, ctime, inode): see check_entry().
STAMP = ".verified.json"
# File times come from a clock that ticks every 1-10 ms: a file changed less than this before it was hashed
# could be changed again with the same ctime, so its digest is not trusted from the stamp (like git's "racy" files).
RACY_NS = 50_000_000


def entry_files(entry: Path) -> dict[str, Path]:
    """The files of a cache entry that its manifest accounts for (all but the manifest and the stamp)."""
    return {
        rel: path for rel, path, st in walk_files(entry) if stat.S_ISREG(st.st_mode) and rel not in (MANIFEST, STAMP)
    }


def describe_files(entry: Path) -> dict[str, dict[str, Any]]:
    """Size and sha256 of every file of an entry, as its manifest records them."""
    return {rel: {"size": path.stat().st_size, "sha256": sha256_file(path)} for rel, path in entry_files(entry).items()}


def file_signature(st: os.stat_result, digest: str) -> list[Any]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, digest]


def check_entry(entry: Path, inputs: StageInputs | None = None, *, trust_stamp: bool = True) -> str | None:
    """None when the entry is intact, else what is wrong in a few words, naming the file.

    The manifest must belong to the key (and to `inputs`, when given); every file it lists must be there
    with its size and sha256, and no other file. Hashing costs ~0.17 s per 200 MiB here (sha256 with
    SHA-NI, warm page cache; several times that cold), about 1 s for the demo's entries: too much to pay
    on every no-change rebuild (target 5 s). So a file whose size, mtime, ctime and inode are those it had
    when last hashed (recorded in STAMP) is not hashed again: any write, truncation or touch changes its
    ctime, which no user can set back. Sizes are always compared. `trust_stamp=False` hashes everything.
    """
    started = time.time_ns()
    try:
        manifest = json.loads((entry / MANIFEST).read_text())
    except FileNotFoundError:
        return f"{MANIFEST}: missing"
    except (OSError, ValueError) as exc:
        return f"{MANIFEST}: unreadable ({exc})"
    key = inputs.key if inputs is not None else entry.name
    if not isinstance(manifest, dict) or manifest.get("key") != key or key_of(manifest.get("inputs") or {}) != key:
        return f"{MANIFEST}: does not match the stage's key {key} (edited?)"
    files = manifest.get("files")
    if not isinstance(files, dict):
        return f"{MANIFEST}: records no file sizes and digests (made by an older xenlive)"
    stamp = _read_stamp(entry) if trust_stamp else {}
    verified: dict[str, list[Any]] = {}
    for rel, want in sorted(files.items()):
        try:
            size, digest = int(want["size"]), str(want["sha256"])
        except (TypeError, KeyError, ValueError):
            return f"{MANIFEST}: the record of {rel} is malformed"
        try:
            st = (entry / rel).stat()
        except FileNotFoundError:
            return f"{rel}: missing"
        if st.st_size != size:
            return f"{rel}: {st.st_size} bytes, the manifest says {size}"
        signature = file_signature(st, digest)
        if stamp.get(rel) != signature and sha256_file(entry / rel) != digest:
            return f"{rel}: content differs from its sha256 in the manifest"
        verified[rel] = signature
    unlisted = sorted(set(entry_files(entry)) - set(files))
    if unlisted:
        return f"{unlisted[0]}: not in the manifest"
    if verified != stamp:
        write_stamp(entry, verified, started)
    return None


def _read_stamp(entry: Path) -> dict[str, Any]:
    """The trusted signatures of STAMP: those of files last changed well before they were hashed."""
    try:
        data = json.loads((entry / STAMP).read_text())
        hashed_ns, files = int(data["hashed_ns"]), dict(data["files"])
    except (OSError, ValueError, TypeError, KeyError):
        return {}
    return {rel: sig for rel, sig in files.items() if isinstance(sig, list) and sig[2] < hashed_ns - RACY_NS}


def write_stamp(entry: Path, verified: Mapping[str, list[Any]], hashed_ns: int) -> None:
    """Record signatures of files hashed after hashed_ns. Best effort: without it the next lookup hashes again."""
    with contextlib.suppress(OSError), atomic_path(entry / STAMP) as tmp:
        tmp.write_text(canonical_json({"hashed_ns": hashed_ns, "files": verified}))
