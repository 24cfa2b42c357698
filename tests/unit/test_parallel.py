"""Independent stages at the same time: they really overlap, a failure lets the others finish, and no job
starts a tool while the build is being stopped. Jobs running real tools: tests/tools/test_parallel.py."""

from __future__ import annotations

import threading
import time

import pytest

from xenlive.errors import ToolError
from xenlive.parallel import Together
from xenlive.run import run, stop_all_tools


def test_jobs_run_at_the_same_time() -> None:
    both = threading.Barrier(2, timeout=5)  # each job waits for the other: one after another would time out

    def job(name: str) -> str:
        both.wait()
        return name

    with Together() as jobs:
        first, second = jobs.start("a", job, "a"), jobs.start("b", job, "b")
    assert (first.result(), second.result()) == ("a", "b")


def test_one_job_at_a_time_runs_them_in_order() -> None:
    order: list[str] = []
    with Together(1) as jobs:
        for name in ("dom0", "guest", "grub"):
            jobs.start(name, order.append, name)
    assert order == ["dom0", "guest", "grub"]


def test_a_failing_job_lets_the_others_finish_then_its_error_is_raised() -> None:
    finished = threading.Event()

    def fails() -> None:
        raise ToolError("mmdebstrap failed with exit code 1")

    def slow() -> None:
        time.sleep(0.3)
        finished.set()

    with pytest.raises(ToolError, match="mmdebstrap failed"), Together() as jobs:
        jobs.start("dom0-rootfs", fails)
        jobs.start("guest-debian", slow)
    assert finished.is_set()  # its work is cached for the next build


def test_no_job_starts_a_tool_while_the_build_is_being_stopped() -> None:
    from xenlive.run import allow_tools

    stop_all_tools()
    try:
        with pytest.raises(KeyboardInterrupt):
            run(["true"])
    finally:
        allow_tools()
