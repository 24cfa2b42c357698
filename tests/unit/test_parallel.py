"""Independent stages at the same time: they really overlap, each logs under its label, a failure lets the
others finish, and stopping the build stops the tools of every job."""

from __future__ import annotations

import threading
import time

import pytest

from xenlive.errors import ToolError
from xenlive.parallel import Together
from xenlive.progress import step
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


def test_each_job_logs_its_steps_and_its_tools_output_under_its_label(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    def job() -> None:
        with step("guest image debian"):
            run(["sh", "-c", "echo I: downloading packages; echo E: oops >&2"])

    with caplog.at_level("INFO", logger="xenlive"), Together() as jobs:
        jobs.start("guest-debian", job)
    assert "[guest-debian] ==> guest image debian" in caplog.text
    err = capfd.readouterr().err
    assert "[guest-debian] I: downloading packages\n" in err
    assert "[guest-debian] E: oops\n" in err


def test_stopping_the_build_stops_the_tool_of_every_job() -> None:
    started = threading.Event()
    outcome: list[BaseException] = []

    def job() -> None:
        started.set()
        try:
            run(["sleep", "30"])
        except BaseException as exc:
            outcome.append(exc)
            raise

    begin = time.monotonic()
    with pytest.raises(KeyboardInterrupt), Together() as jobs:
        jobs.start("dom0-rootfs", job)
        assert started.wait(5)
        time.sleep(0.2)
        raise KeyboardInterrupt  # as Ctrl-C (or SIGTERM) in the main thread while the jobs run
    assert time.monotonic() - begin < 10
    assert isinstance(outcome[0], ToolError)  # sleep got SIGTERM
    run(["true"])  # and tools may run again afterwards


def test_no_job_starts_a_tool_while_the_build_is_being_stopped() -> None:
    from xenlive.run import allow_tools

    stop_all_tools()
    try:
        with pytest.raises(KeyboardInterrupt):
            run(["true"])
    finally:
        allow_tools()
