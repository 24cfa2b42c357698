"""Jobs at the same time running real tools: their output labelled by job, and every tool stopped when the
build is."""

from __future__ import annotations

import threading
import time

import pytest

from xenlive.errors import ToolError
from xenlive.parallel import Together
from xenlive.progress import step
from xenlive.run import run

pytestmark = pytest.mark.tools


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
