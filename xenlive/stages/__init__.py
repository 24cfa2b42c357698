"""Build stages. Each makes one artifact in the cache from declared inputs (see xenlive.cache).

A stage module declares the inputs of its artifact (a StageInputs: settings, content digests of the files
it reads, upstream keys, a stage version) and a build step that writes the artifact into an empty work
directory. StageRunner.run() reuses the cached entry for those inputs, or runs the build step (saying why)
and renames the work directory into the cache. A stage whose artifact is one file outside the cache (the ISO,
in OUTDIR) goes the same way, with an Output saying where the file is and whether these inputs made it.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xenlive.cache import MANIFEST, Cache, StageInputs, explain_change
from xenlive.cache.locks import flock
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
    path: Path  # the cache entry, or the file of a stage with an Output
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


@dataclass(frozen=True)
class Output:
    """Where a stage keeps its artifact when the cache holds no copy of it: one file (the ISO, in OUTDIR).
    `made_by(key)`: the facts of the file there when the inputs of that key made it (its record says so and
    its bytes match), else None."""

    file: Path
    made_by: Callable[[str], dict[str, Any] | None]


@dataclass
class StageRunner:
    """Where this build happens: the cache, the build context, and the results of the stages run so far."""

    cache: Cache
    context: BuildContext
    results: list[StageResult] = field(default_factory=list)
    debs: DebCache | None = None  # where apt gets Debian packages (a proxy over CACHE/debs); None: from the archive
    _outputs: dict[Path, int] = field(default_factory=dict, init=False, repr=False)  # output directories held locked

    def run(
        self,
        inputs: StageInputs,
        title: str,
        build: Callable[[Path], dict[str, Any] | None],
        output: Output | None = None,
    ) -> StageResult:
        """Reuse the cached entry for these inputs, or build it (saying why) and cache it.

        Under the stage key's lock: a concurrent build of the same entry is waited for, then reused.

        With an `output`, the artifact is that file and not a cache entry: it is kept when `output.made_by`
        says these inputs made it, else the build step writes it (whole, renamed into place), given an empty
        scratch directory for its other files. Its directory stays locked from before that check until
        close(): a build writing into the same directory waits for this one to end, so that what one build
        writes there (the ISO, then its manifest) is never mixed with another's."""
        start = time.monotonic()
        if output is not None:
            self._hold_output_dir(output.file.parent)
        with self.cache.stage_lock(inputs) as waited:
            found = self._find(inputs, output)
            if found is not None:
                path, info = found
                self.cache.remember(inputs)
                if output is not None:
                    how = f"{output.file} was made from these inputs, keeping it"
                else:
                    how = "built meanwhile by the build we waited for, reusing it" if waited else "cached"
                note(f"{title}: {how} ({inputs.key})")
                seconds = time.monotonic() - start
                result = StageResult(inputs.stage, inputs.key, path, True, seconds, "cached", info, inputs.epoch)
            else:
                previous = self.cache.previous_inputs(inputs.stage)
                if output is not None and previous == inputs.as_json():
                    reason = f"{output.file} was not made from these inputs"
                else:
                    reason = explain_change(previous, inputs.as_json())
                with step(f"{title}: building because {reason}"):
                    path, info = self._build(inputs, build, output)
                seconds = time.monotonic() - start
                result = StageResult(inputs.stage, inputs.key, path, False, seconds, reason, info, inputs.epoch)
        self.results.append(result)
        return result

    def close(self) -> None:
        """Release what this build holds: its output directories (another build may write into them now) and
        the cache entries it used."""
        while self._outputs:
            os.close(self._outputs.popitem()[1])
        self.cache.close()

    def _find(self, inputs: StageInputs, output: Output | None) -> tuple[Path, dict[str, Any]] | None:
        """The artifact of these inputs, and its facts, if there is one: the intact cache entry, or the output file."""
        if output is not None:
            facts = output.made_by(inputs.key)
            return None if facts is None else (output.file, facts)
        hit = self.cache.lookup(inputs)
        return None if hit is None else (hit, _info(hit))

    def _build(
        self, inputs: StageInputs, build: Callable[[Path], dict[str, Any] | None], output: Output | None
    ) -> tuple[Path, dict[str, Any]]:
        """Run the build step: into a cache entry, or for an output file (the cache remembers only its inputs)."""
        info: dict[str, Any] = {}
        if output is not None:
            with self.cache.scratch(inputs.stage) as work:
                info = build(work) or {}
            self.cache.remember(inputs)
            return output.file, info
        with self.cache.building(inputs) as work:
            info = build(work) or {}
            (work / "info.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        return self.cache.entry(inputs), info

    def _hold_output_dir(self, directory: Path) -> None:
        """Lock `directory` until close(), waiting (and saying so) while another build holds it."""
        directory.mkdir(parents=True, exist_ok=True)
        held = directory.resolve()
        if held in self._outputs:
            return
        fd = flock(held, fcntl.LOCK_EX, wait=False, directory=True)
        if fd is None:
            note(f"waiting for {directory}: another build is writing into it")
            fd = flock(held, fcntl.LOCK_EX, directory=True)
        assert fd is not None
        self._outputs[held] = fd


def _info(entry: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((entry / "info.json").read_text())
        return data
    except (OSError, ValueError):
        return {}


__all__ = ["MANIFEST", "BuildContext", "Output", "StageResult", "StageRunner"]
