"""The build context: what every stage of one build shares, resolved once before the first stage.

It holds where each stage's dates come from (`Dates`) and the versions of the tools whose output depends on
them (part of the cache keys of the stages that run them). It is frozen and handed to the stages as an
argument: nothing reads it back from the process environment. A tool that itself wants SOURCE_DATE_EPOCH
in its environment (mmdebstrap, grub-mkrescue's mtools) gets it from `date_env()`, in the one run() call
that starts it.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial

from xenlive.run import tool_version

# How a stage or builder finds the version of a tool it runs: the tool's name -> a function that asks it.
VersionProbes = Mapping[str, Callable[[], str]]
# The flag that makes a tool print its version, where it is not --version: squashfs-tools 4.5's mksquashfs
# fails on --version, and e2fsprogs' tools take -V.
VERSION_FLAGS = {"mksquashfs": "-version", "mkfs.ext4": "-V", "debugfs": "-V"}

# The date of every file a stage writes when nothing it reads names one: 2024-01-01 00:00 UTC. Fixed, so
# that a stage's output and key depend on what it reads, never on when, where or from which commit it is
# built. Not 0: e2fsprogs takes a fake time of 0 to mean "now", and FAT (the EFI boot image) cannot date a
# file before 1980.
DEFAULT_EPOCH = 1704067200

# A snapshot of a Debian archive names its time: http://snapshot.debian.org/archive/debian/20261101T000000Z
SNAPSHOT_TIME = re.compile(r"/archive/[^/\s]+/(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z(?:/|\s|$)")


@dataclass(frozen=True)
class Dates:
    """Where each stage's dates come from (README.md, "Reproducible builds").

    `environment`: the SOURCE_DATE_EPOCH the build was started with; it dates every stage. `recipe`: the
    recipe's iso.source_date_epoch; it dates the stages that read the recipe (the config layer, the ISO).
    Without either, a stage is dated by what it reads: the archive's snapshot time for the stages that install
    Debian packages from a snapshot, else DEFAULT_EPOCH.
    """

    environment: int | None = None
    recipe: int | None = None

    def of_recipe(self) -> int:
        """For the stages that read the recipe: dom0's config layer and the ISO."""
        for epoch in (self.recipe, self.environment):
            if epoch is not None:
                return epoch
        return DEFAULT_EPOCH

    def of_archive(self, sources: Iterable[str]) -> int:
        """For the stages that install Debian packages from `sources` (one-line apt sources): dom0's root and
        the Debian guest images. A snapshot archive dates them by its time (the newest, when every source is a
        snapshot), so that repeating a build from the same snapshot dates its files by the archive state."""
        if self.environment is not None:
            return self.environment
        return snapshot_time(sources) or DEFAULT_EPOCH

    def fixed(self) -> int:
        """For the stages that read neither the recipe nor the archive (downloaded images, GRUB's boot images)."""
        return DEFAULT_EPOCH if self.environment is None else self.environment


def snapshot_time(sources: Iterable[str]) -> int | None:
    """The time of a snapshot archive that every source comes from (the newest), or None."""
    times = []
    for line in sources:
        match = SNAPSHOT_TIME.search(line)
        if match is None:
            return None
        year, month, day, hour, minute, second = (int(part) for part in match.groups())
        times.append(calendar.timegm((year, month, day, hour, minute, second)))
    return max(times, default=None)


def date_env(epoch: int) -> dict[str, str]:
    """The environment a tool that reads SOURCE_DATE_EPOCH itself gets on top of ours."""
    return {"SOURCE_DATE_EPOCH": str(epoch)}


@dataclass(frozen=True)
class BuildContext:
    dates: Dates = field(default_factory=Dates)  # where each stage's dates come from
    versions: Mapping[str, str] = field(default_factory=dict)  # tool -> version, for every tool that keys a stage

    def version(self, tool: str) -> str:
        return self.versions[tool]

    def versions_for(self, probes: VersionProbes) -> dict[str, str]:
        """The versions of a stage's tools (its VERSIONS), as settings of its key: tool -> version."""
        return {tool: self.version(tool) for tool in probes}


def versions_of(*tools: str) -> dict[str, Callable[[], str]]:
    """Probes for tools that tell their version with `--version`, or the flag VERSION_FLAGS names (the first
    line of what they print)."""
    return {tool: partial(tool_version, tool, VERSION_FLAGS.get(tool, "--version")) for tool in tools}


def resolve_context(dates: Dates, probes: Iterable[VersionProbes]) -> BuildContext:
    """Ask each tool for its version once, however many stages run it."""
    merged: dict[str, Callable[[], str]] = {}
    for table in probes:
        merged.update(table)
    return BuildContext(dates, {tool: merged[tool]() for tool in sorted(merged)})
