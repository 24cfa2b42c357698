"""Two processes building the same stage at once through the real StageRunner: the second waits for the
first and reuses its entry, or builds the stage itself when the first fails."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import time
from pathlib import Path

import pytest

from tests.unit.test_cache import inputs, stage_runner
from xenlive.cache import Cache, check_entry

pytestmark = pytest.mark.tools


def _build_in_child(root: str, log_file: str, fail: bool) -> None:
    """A second process building the demo stage through the real StageRunner (see the concurrency tests)."""
    handler = logging.FileHandler(log_file)
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)

    def build(work: Path) -> None:
        Path(root, "started").write_text(str(os.getpid()))
        with Path(root, "builds.log").open("a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(1.0)
        (work / "out.bin").write_text("data")
        if fail:
            raise RuntimeError("this build fails")

    with contextlib.suppress(RuntimeError):
        stage_runner(Path(root) / "cache").run(inputs(), "demo stage", build)
    handler.flush()


def _start_two_builds(tmp_path: Path, first_fails: bool) -> tuple[int, str]:
    ctx = multiprocessing.get_context("fork")
    first = ctx.Process(target=_build_in_child, args=(str(tmp_path), str(tmp_path / "first.log"), first_fails))
    first.start()
    deadline = time.monotonic() + 10
    while not (tmp_path / "started").exists():
        assert time.monotonic() < deadline, "the first build never started"
        time.sleep(0.02)
    second = ctx.Process(target=_build_in_child, args=(str(tmp_path), str(tmp_path / "second.log"), False))
    second.start()
    first.join(20)
    second.join(20)
    assert first.pid is not None
    return first.pid, (tmp_path / "second.log").read_text()


def test_concurrent_build_waits_and_reuses_the_entry(tmp_path: Path) -> None:
    first_pid, second_log = _start_two_builds(tmp_path, first_fails=False)
    assert (tmp_path / "builds.log").read_text().split() == [str(first_pid)]
    keyed = inputs()
    assert f"waiting for stage demo (key {keyed.key}), being built by pid {first_pid}" in second_log
    assert "built meanwhile by the build we waited for, reusing it" in second_log
    entry = Cache(tmp_path / "cache").entry(keyed)
    assert check_entry(entry, keyed, trust_stamp=False) is None
    assert list((tmp_path / "cache" / "tmp").iterdir()) == []


def test_concurrent_build_builds_itself_when_the_other_fails(tmp_path: Path) -> None:
    first_pid, second_log = _start_two_builds(tmp_path, first_fails=True)
    builders = (tmp_path / "builds.log").read_text().split()
    assert builders[0] == str(first_pid) and len(builders) == 2
    assert "waiting for stage demo" in second_log and "building because" in second_log
    keyed = inputs()
    assert check_entry(Cache(tmp_path / "cache").entry(keyed), keyed, trust_stamp=False) is None
