"""The unit layer runs no external tool: every way of starting a process fails the test that tries.

A test that needs a real tool (or a real script under sh) belongs in tests/tools. Asking whether a tool
exists (`shutil.which`) and reading files are fine.
"""

from __future__ import annotations

import _posixsubprocess
import os
import subprocess
from collections.abc import Iterator
from typing import Any, NoReturn

import pytest

# Every entry point that starts or replaces a process: subprocess and multiprocessing start theirs
# through _posixsubprocess.fork_exec or os.fork; os.spawn* and pty.fork go through os.fork.
BLOCKED = {
    subprocess.Popen: ("_execute_child",),
    _posixsubprocess: ("fork_exec",),
    os: (
        "system",
        "popen",
        "fork",
        "forkpty",
        "posix_spawn",
        "posix_spawnp",
        "execv",
        "execve",
        "execl",
        "execle",
        "execlp",
        "execlpe",
        "execvp",
        "execvpe",
    ),
}


class ProcessInUnitTest(RuntimeError):
    """A unit test tried to start a process."""


class ProcessGuard:
    """The processes a test tried to start; any at all fails it, even if the code under test caught the error."""

    def __init__(self) -> None:
        self.attempts: list[str] = []

    def refuse(self, name: str, args: tuple[Any, ...]) -> NoReturn:
        if args and isinstance(args[0], subprocess.Popen):
            name, args = "subprocess.Popen", args[1:]  # Popen._execute_child(self, argv, ...)
        what = f"{name}({args[0]!r})" if args else f"{name}()"
        self.attempts.append(what)
        raise ProcessInUnitTest(
            f"a unit test started a process: {what}; tests/unit runs no external tool (move the test to tests/tools)"
        )


@pytest.fixture(autouse=True)
def process_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[ProcessGuard]:
    guard = ProcessGuard()
    for owner, names in BLOCKED.items():
        for name in names:
            if hasattr(owner, name):

                def refuse(*args: Any, _name: str = name, **kwargs: Any) -> NoReturn:
                    guard.refuse(_name, args)

                monkeypatch.setattr(owner, name, refuse)
    yield guard


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Fail a test whose process was refused even when the code under test caught the error and went on."""
    yield
    guard = getattr(item, "funcargs", {}).get("process_guard")
    if guard is not None and guard.attempts:
        pytest.fail(f"a unit test started a process: {'; '.join(guard.attempts)} (tests/unit runs no external tool)")
