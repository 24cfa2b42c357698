"""`build.py diff A B`: what differs between two builds, given their ISOs or their manifests.

With diffoscope installed, it does the work (file by file, recursively). Without it: a summary of
the manifests (recipe hash, stage keys, package versions of dom0 and each guest image) and, for ISOs,
the files on the ISO that differ and, inside a differing squashfs, the files that differ there.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from xenlive.errors import XenliveError
from xenlive.fsutil import digest_tree
from xenlive.manifest import BuildManifest, ManifestError, manifest_path, read_manifest
from xenlive.run import require_tools, run

ISO9660_MAGIC_OFFSET = 0x8001  # "CD001" of the primary volume descriptor


class DiffInputError(XenliveError):
    """A or B is neither an ISO nor a manifest, or they are not of the same kind."""

    exit_code = 2


@dataclass(frozen=True)
class DiffReport:
    lines: list[str]

    @property
    def different(self) -> bool:
        return bool(self.lines)


def diffoscope_argv(a: Path, b: Path) -> list[str]:
    return ["diffoscope", "--no-progress", str(a), str(b)]


def run_diffoscope(a: Path, b: Path) -> int:
    """diffoscope's own report on our stdout; its exit status (0 same, 1 different)."""
    return run(diffoscope_argv(a, b), check=False).returncode


def extract_iso_argv(iso: Path, dest: Path) -> list[str]:
    return ["xorriso", "-osirrox", "on", "-indev", str(iso), "-extract", "/", str(dest)]


def squashfs_listing_argv(image: Path) -> list[str]:
    return ["unsquashfs", "-lln", str(image)]


def extract_squashfs_argv(image: Path, dest: Path) -> list[str]:
    return ["unsquashfs", "-no-progress", "-quiet", "-d", str(dest), str(image)]


def table_changes(what: str, old: Mapping[str, str], new: Mapping[str, str], *, values: bool = True) -> list[str]:
    """'WHAT: changed NAME OLD -> NEW' (then added, removed), one line per name, sorted; `values`
    False leaves the values out (for digests)."""

    def shown(value: str) -> str:
        return f" {value}" if values else ""

    changed = sorted(k for k in set(old) & set(new) if old[k] != new[k])
    lines = [f"{what}: changed {k}" + (f" {old[k]} -> {new[k]}" if values else "") for k in changed]
    lines += [f"{what}: added {k}{shown(new[k])}" for k in sorted(set(new) - set(old))]
    lines += [f"{what}: removed {k}{shown(old[k])}" for k in sorted(set(old) - set(new))]
    return lines


def diff_manifests(a: BuildManifest, b: BuildManifest) -> list[str]:
    lines = []
    for label, old, new in (
        ("xenlive version", a.xenlive, b.xenlive),
        ("recipe sha256", a.recipe.sha256, b.recipe.sha256),
        ("ISO sha256", a.iso.sha256, b.iso.sha256),
    ):
        if old != new:
            lines.append(f"{label}: {old or None} -> {new or None}")
    lines += table_changes("stage key", a.stage_keys(), b.stage_keys())
    lines += table_changes("dom0 package", a.dom0_packages, b.dom0_packages)
    for image in sorted(set(a.guest_images) | set(b.guest_images)):
        before, after = (m.guest_images[image].packages if image in m.guest_images else {} for m in (a, b))
        lines += table_changes(f"guest image {image} package", before, after)
    return lines


def parse_squashfs_listing(text: str) -> dict[str, str]:
    """unsquashfs -lln output -> {path: 'mode owner size date time [-> target]'}."""
    out = {}
    for line in text.splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5].startswith("squashfs-root"):
            name, arrow, target = fields[5].partition(" -> ")
            rel = name.removeprefix("squashfs-root").lstrip("/") or "."
            out[rel] = " ".join(fields[:5]) + (f" -> {target}" if arrow else "")
    return out


def read_build_manifest(path: Path) -> BuildManifest:
    """A manifest to compare: one that lists its stages."""
    try:
        manifest = read_manifest(path)
    except (OSError, ManifestError) as exc:
        raise DiffInputError(f"{path}: not a readable build manifest ({exc})") from exc
    if manifest.stages is None:
        raise DiffInputError(f"{path}: not a build manifest (no 'stages')")
    return manifest


def is_iso(path: Path) -> bool:
    with path.open("rb") as f:
        f.seek(ISO9660_MAGIC_OFFSET)
        return f.read(5) == b"CD001"


def diff_builds(a: Path, b: Path) -> DiffReport:
    """The summary diff of two manifests, or of two ISOs (and their manifests, when beside them)."""
    kinds = ["manifest" if p.suffix == ".json" else "iso" for p in (a, b)]
    if kinds[0] != kinds[1]:
        raise DiffInputError(f"compare two ISOs or two manifests, not {kinds[0]} {a} with {kinds[1]} {b}")
    if kinds[0] == "manifest":
        return DiffReport(diff_manifests(read_build_manifest(a), read_build_manifest(b)))
    for path in (a, b):
        if not is_iso(path):
            raise DiffInputError(f"{path}: not an ISO 9660 image (nor a .json manifest)")
    lines = []
    manifests = [manifest_path(p) for p in (a, b)]
    if all(m.is_file() for m in manifests):
        lines += diff_manifests(read_build_manifest(manifests[0]), read_build_manifest(manifests[1]))
    return DiffReport(lines + diff_isos(a, b))


def diff_isos(a: Path, b: Path) -> list[str]:
    """Files that differ on two ISOs; for a differing squashfs, the files inside it that differ."""
    require_tools(["xorriso", "unsquashfs"])
    with extracted(extract_iso_argv, a) as tree_a, extracted(extract_iso_argv, b) as tree_b:
        files_a, files_b = digest_tree(tree_a), digest_tree(tree_b)
        lines = table_changes("ISO file", _rooted(files_a), _rooted(files_b), values=False)
        for rel in sorted(set(files_a) & set(files_b)):
            if rel.endswith(".squashfs") and files_a[rel] != files_b[rel]:
                lines += diff_squashfs(tree_a / rel, tree_b / rel, label=f"/{rel}")
    return lines


def diff_squashfs(a: Path, b: Path, *, label: str) -> list[str]:
    """Files inside two squashfs images that differ in content or in attributes (owner, size, time)."""
    listings = [parse_squashfs_listing(run(squashfs_listing_argv(p), capture=True).stdout.decode()) for p in (a, b)]
    with extracted(extract_squashfs_argv, a) as tree_a, extracted(extract_squashfs_argv, b) as tree_b:
        contents = [digest_tree(tree_a), digest_tree(tree_b)]
    lines = []
    for rel in sorted(set(listings[0]) | set(listings[1])):
        old, new = listings[0].get(rel), listings[1].get(rel)
        if old is None or new is None:
            lines.append(f"inside {label}: {'added' if old is None else 'removed'} {rel}")
        elif contents[0].get(rel) != contents[1].get(rel):
            lines.append(f"inside {label}: changed {rel} (content)")
        elif old != new:
            lines.append(f"inside {label}: changed {rel} ({old} -> {new})")
    if not lines:
        lines.append(f"inside {label}: same files, attributes and contents; the images differ in layout only")
    return lines


def _rooted(files: Mapping[str, str]) -> dict[str, str]:
    return {f"/{rel}": digest for rel, digest in files.items()}


@contextlib.contextmanager
def extracted(argv: Callable[[Path, Path], list[str]], image: Path) -> Iterator[Path]:
    """A temporary directory holding what argv(image, dest) extracts; removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="xenlive-diff-") as tmp:
        dest = Path(tmp) / "x"
        run(argv(image, dest), capture=True)
        try:
            yield dest
        finally:
            for dirpath, _dirnames, _filenames in os.walk(dest):
                os.chmod(dirpath, 0o755)  # the ISO's read-only directories
