"""Exceptions raised by the library; the CLI maps them to messages and exit codes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


def printable(text: str) -> str:
    """`text` as it may reach a terminal: each character str.isprintable() refuses (C0 and C1 controls, DEL,
    line breaks, bidirectional and other format controls, undecodable bytes of a file name) written as its
    Python escape (`\\x1b`, `\\n`, `\\u202e`). Messages carry names from files someone else wrote: a key
    or a path must not move the cursor, retitle the terminal or add a line that looks like xenlive's."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class XenliveError(Exception):
    """Base class: anything the user can act on. The CLI prints it as one line (and one indented line per
    detail, e.g. per guest), exit 1."""

    exit_code = 1

    def __init__(self, message: str = "", *, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.details = tuple(details)

    def __str__(self) -> str:
        return "\n".join([super().__str__(), *(f"  {d}" for d in self.details)])

    def lines(self) -> list[str]:
        """The message as the CLI prints it: the message and each detail one line, escaped (printable())."""
        return [printable(super().__str__()), *(f"  {printable(d)}" for d in self.details)]


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
        """One line, escaped (printable()): the key and the message may hold any text of the file."""
        where = f"{self.file}:{self.line}:{self.column}"
        key = f" {self.key}:" if self.key else ""
        hint = f" (hint: {self.hint})" if self.hint else ""
        return printable(f"{where}:{key} {self.message}{hint}")


class RecipeError(XenliveError):
    """A recipe or guest image recipe is invalid. Carries every problem found, not just the first."""

    exit_code = 2

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (str(p.file), p.line, p.column))
        super().__init__("\n".join(str(p) for p in self.problems))

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]  # each escaped


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
