"""The build context: what every stage of one build shares, resolved once before the first stage.

It holds the time the build dates its output by (SOURCE_DATE_EPOCH) and the versions of the tools whose
output depends on them (part of the cache keys of the stages that run them). It is frozen and handed to
the stages as an argument: nothing reads it back from the process environment. A tool that itself wants
SOURCE_DATE_EPOCH in its environment (mmdebstrap, grub-mkrescue's mtools) gets it from `tool_env()`, in
the one run() call that starts it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from xenlive.errors import ToolError
from xenlive.run import run, tool_version

# How a stage or builder finds the version of a tool it runs: the tool's name -> a function that asks it.
VersionProbes = Mapping[str, Callable[[], str]]


@dataclass(frozen=True)
class BuildContext:
    epoch: int  # seconds since 1970: every file the build writes is dated by it
    versions: Mapping[str, str]  # tool -> its version, for every tool whose version keys a stage

    def version(self, tool: str) -> str:
        return self.versions[tool]

    def tool_env(self) -> dict[str, str]:
        """The environment a tool that reads SOURCE_DATE_EPOCH itself gets on top of ours."""
        return {"SOURCE_DATE_EPOCH": str(self.epoch)}


def versions_of(*tools: str) -> dict[str, Callable[[], str]]:
    """Probes for tools that tell their version with `--version` (the first line of what they print)."""
    return {tool: partial(tool_version, tool) for tool in tools}


def resolve_context(epoch: int, probes: Iterable[VersionProbes]) -> BuildContext:
    """Ask each tool for its version once, however many stages run it."""
    merged: dict[str, Callable[[], str]] = {}
    for table in probes:
        merged.update(table)
    return BuildContext(epoch, {tool: merged[tool]() for tool in sorted(merged)})


def source_date_epoch(recipe_epoch: int | None, environment_epoch: int | None, files: Iterable[Path]) -> int:
    """The time every file of the build is dated: the recipe's iso.source_date_epoch, else the SOURCE_DATE_EPOCH
    this run was started with, else the newest commit time of the recipe's files in their git checkout (the
    same in every clone), else 0."""
    if recipe_epoch is not None:
        return recipe_epoch
    if environment_epoch is not None:
        return environment_epoch
    times = [commit_time(Path(f).resolve()) for f in files]
    return max((t for t in times if t is not None), default=0)


def commit_time(path: Path) -> int | None:
    """When `path` was last committed, if it is in a git checkout (a recipe in /tmp extending one is not)."""
    try:
        proc = run(["git", "log", "-1", "--format=%ct", "--", path.name], cwd=path.parent, capture=True, check=False)
    except ToolError:  # no git
        return None
    out = (proc.stdout or b"").decode().strip()
    return int(out) if proc.returncode == 0 and out.isdigit() else None
