"""Build stages. Each makes one artifact in the cache from declared inputs (see xenlive.cache).

A stage module declares the inputs of its artifact (a StageInputs: settings, content digests of the files
it reads, upstream keys, a stage version) and a build step that writes the artifact into an empty work
directory. StageRunner.run() reuses the cached entry for those inputs, or runs the build step (saying why)
and renames the work directory into the cache.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xenlive.cache import MANIFEST, Cache, StageInputs, explain_change
from xenlive.context import BuildContext
from xenlive.debcache import DebCache
from xenlive.errors import BuildError
from xenlive.packages import FILE as PACKAGES_FILE
from xenlive.packages import DebPackage, read_packages
from xenlive.progress import note, step


@dataclass(frozen=True)
class StageResult:
    name: str
    key: str
    path: Path  # the cache entry
    cached: bool
    seconds: float
    reason: str
    info: dict[str, Any] = field(default_factory=dict)  # what the build step returned, kept in info.json
    epoch: int | None = None  # what the stage dated its files by

    def fact(self, name: str) -> Any:
        """One thing the build step recorded; a cache entry without it is an error naming the entry."""
        if name not in self.info:
            raise BuildError(f"stage {self.name}: {self.path / 'info.json'} records no {name!r}")
        return self.info[name]

    def packages(self) -> dict[str, DebPackage]:
        """The packages.tsv of a stage that makes a root filesystem or guest image."""
        return read_packages(self.path / PACKAGES_FILE)


@dataclass
class StageRunner:
    """Where this build happens: the cache, the build context, and the results of the stages run so far."""

    cache: Cache
    context: BuildContext
    results: list[StageResult] = field(default_factory=list)
    debs: DebCache | None = None  # where apt gets Debian packages (a proxy over CACHE/debs); None: from the archive

    def run(self, inputs: StageInputs, title: str, build: Callable[[Path], dict[str, Any] | None]) -> StageResult:
        """Reuse the cached entry for these inputs, or build it (saying why) and cache it.

        Under the stage key's lock: a concurrent build of the same entry is waited for, then reused."""
        start = time.monotonic()
        with self.cache.stage_lock(inputs) as waited:
            hit = self.cache.lookup(inputs)
            if hit is not None:
                self.cache.remember(inputs)
                how = "built meanwhile by the build we waited for, reusing it" if waited else "cached"
                note(f"{title}: {how} ({inputs.key})")
                seconds = time.monotonic() - start
                result = StageResult(inputs.stage, inputs.key, hit, True, seconds, "cached", _info(hit), inputs.epoch)
            else:
                reason = explain_change(self.cache.previous_inputs(inputs.stage), inputs.as_json())
                with step(f"{title}: building because {reason}"):
                    info: dict[str, Any] = {}
                    with self.cache.building(inputs) as work:
                        info = build(work) or {}
                        (work / "info.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
                path = self.cache.entry(inputs)
                seconds = time.monotonic() - start
                result = StageResult(inputs.stage, inputs.key, path, False, seconds, reason, info, inputs.epoch)
        self.results.append(result)
        return result

    def record(self, result: StageResult) -> None:
        """Count a stage that keeps its artifact outside the cache (the ISO, in OUTDIR) among this build's."""
        self.results.append(result)


def _info(entry: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((entry / "info.json").read_text())
        return data
    except (OSError, ValueError):
        return {}


__all__ = ["MANIFEST", "BuildContext", "StageResult", "StageRunner"]
