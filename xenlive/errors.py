"""Exceptions raised by the library; the CLI maps them to messages and exit codes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class XenliveError(Exception):
    """Base class: anything the user can act on. The CLI prints it as one line, exit 1."""

    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One located problem in an input file."""

    file: Path
    line: int
    column: int
    key: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        key = f" {self.key}:" if self.key else ""
        hint = f" (hint: {self.hint})" if self.hint else ""
        return f"{where}:{key} {self.message}{hint}"


class RecipeError(XenliveError):
    """A recipe or guest image recipe is invalid. Carries every problem found, not just the first."""

    exit_code = 2

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (str(p.file), p.line, p.column))
        super().__init__("\n".join(str(p) for p in self.problems))


class ToolError(XenliveError):
    """An external tool is missing or failed."""


class BuildError(XenliveError):
    """A build stage failed for a reason that is not a tool failure."""


class PartitionedImageError(XenliveError):
    """A diskimage-builder image asks for partitions, which this build host cannot make."""


class InputFileError(BuildError):
    """An input file met during the build (a template, an overlay file) cannot be used. As with a bad recipe,
    the input must change: the message is one line naming the file (and the line where known), exit 2."""

    exit_code = 2
