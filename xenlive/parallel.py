"""Independent jobs at the same time: dom0's root filesystem, the guest images and GRUB's boot piece read
nothing of each other. Each job runs in a thread of its own and logs under its label (xenlive.progress);
mmdebstrap spends its time downloading and unpacking, so two of them on two cores take little more than one.

A job that fails does not stop the others: they are independent, and what they finish is cached for the
next build; the first failure is raised once all are done. Ctrl-C or SIGTERM stops every job's tools and
waits for the jobs to clean up (unmounts, work directories) before it goes on as KeyboardInterrupt.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from xenlive.progress import depth, labelled
from xenlive.run import allow_tools, stop_all_tools

T = TypeVar("T")


class Together:
    """`with Together(jobs) as run:` start jobs with `run.start(label, fn, *args)`; the block ends once all of
    them have; then each future holds its result. `jobs`: how many run at once (None: all of them)."""

    def __init__(self, jobs: int | None = None) -> None:
        self.jobs = jobs
        self.futures: list[concurrent.futures.Future[Any]] = []
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    def __enter__(self) -> Together:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.jobs or 32, thread_name_prefix="job")
        return self

    def start(self, label: str, fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
        assert self._pool is not None, "start() inside the with block"
        at = depth()

        def job() -> T:
            with labelled(label, at):
                return fn(*args)

        future = self._pool.submit(job)
        self.futures.append(future)
        return future

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        assert self._pool is not None
        try:
            if error is not None and not isinstance(error, Exception):
                raise error  # the block itself was interrupted
            self._wait()
        except BaseException:
            # Interrupted while the jobs ran (KeyboardInterrupt, SIGTERM turned into one): stop them all.
            stop_all_tools()
            try:
                concurrent.futures.wait(self.futures)
            finally:
                allow_tools()
                self._pool.shutdown(wait=True, cancel_futures=True)
            raise
        self._pool.shutdown(wait=True)
        if error is None:
            for future in self.futures:
                failure = future.exception()
                if failure is not None:
                    raise failure

    def _wait(self) -> None:
        pending = set(self.futures)
        while pending:
            _, pending = concurrent.futures.wait(pending, timeout=0.5)
