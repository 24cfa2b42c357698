"""The unit layer runs no external tool: tests/unit/conftest.py refuses every way of starting a process, and
a test whose code caught the refusal and went on fails all the same."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from types import SimpleNamespace
from typing import cast

import pytest

from tests.unit import conftest
from tests.unit.conftest import ProcessGuard, ProcessInUnitTest
from xenlive.run import run

STARTS: dict[str, Callable[[], object]] = {
    "subprocess.run": lambda: subprocess.run(["true"], check=False),
    "subprocess.Popen with a shell": lambda: subprocess.Popen("true", shell=True),
    "xenlive's run()": lambda: run(["true"]),
    "os.system": lambda: os.system("true"),
    "os.popen": lambda: os.popen("true"),
    "os.fork": lambda: os.fork(),
    "os.posix_spawn": lambda: os.posix_spawn("/bin/true", ["true"], {}),
    "os.posix_spawnp": lambda: os.posix_spawnp("true", ["true"], {}),
    "os.execv": lambda: os.execv("/bin/true", ["true"]),
    "os.spawnv": lambda: os.spawnv(os.P_WAIT, "/bin/true", ["true"]),
    "multiprocessing (fork)": lambda: multiprocessing.get_context("fork").Process(target=print).start(),
    "multiprocessing (spawn)": lambda: multiprocessing.get_context("spawn").Process(target=print).start(),
}


@pytest.mark.parametrize("start", STARTS.values(), ids=STARTS.keys())
def test_every_way_of_starting_a_process_is_refused_saying_where_the_test_belongs(
    start: Callable[[], object],
    process_guard: ProcessGuard,
) -> None:
    with pytest.raises(ProcessInUnitTest, match=r"a unit test started a process: .*move the test to tests/tools"):
        start()
    assert process_guard.attempts  # recorded as well, for the check after the test
    process_guard.attempts.clear()  # this test wanted it refused


def test_the_refusal_names_the_command(process_guard: ProcessGuard) -> None:
    with pytest.raises(ProcessInUnitTest, match=r"subprocess\.Popen\(\['mksquashfs', 'tree', 'out\.sqfs'\]\)"):
        subprocess.run(["mksquashfs", "tree", "out.sqfs"], check=False)
    process_guard.attempts.clear()


def test_a_refusal_the_code_under_test_swallowed_still_fails_the_test(process_guard: ProcessGuard) -> None:
    with contextlib.suppress(Exception):  # as careless code under test might
        subprocess.run([sys.executable, "-c", "pass"], check=False)
    # What the hook does after such a test: the test fails, naming the command.
    item = cast(pytest.Item, SimpleNamespace(funcargs={"process_guard": process_guard}))
    after_the_test = conftest.pytest_runtest_call(item)
    next(after_the_test)
    with pytest.raises(pytest.fail.Exception, match=r"started a process: subprocess\.Popen\(\[.*'-c', 'pass'\]\)"):
        next(after_the_test)
    process_guard.attempts.clear()


def test_asking_whether_a_tool_exists_is_not_starting_it(process_guard: ProcessGuard) -> None:
    assert shutil.which("sh")
    assert process_guard.attempts == []
