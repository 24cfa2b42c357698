"""Progress for long work: nested, timed steps logged as they start and end.

Stages that run at the same time (xenlive.parallel) each log from their own thread under a label: their
steps and notes, and the output of the tools they run (xenlive.run), read `[label] ...`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator

log = logging.getLogger("xenlive")


class _State(threading.local):
    depth = 0
    label: str | None = None


_state = _State()


def depth() -> int:
    """How deep in nested steps this thread is (a job started in parallel continues from its starter's depth)."""
    return _state.depth


def current_label() -> str | None:
    """The label of the job this thread runs for, if it runs in parallel with others."""
    return _state.label


@contextlib.contextmanager
def labelled(label: str, at_depth: int) -> Iterator[None]:
    """Log as the job `label` (from a thread of its own), nested `at_depth` steps deep."""
    _state.label, _state.depth = label, at_depth
    try:
        yield
    finally:
        _state.label, _state.depth = None, 0


def _prefix() -> str:
    return "  " * _state.depth + (f"[{_state.label}] " if _state.label else "")


@contextlib.contextmanager
def step(title: str) -> Iterator[None]:
    """Log `title`, run the block, log how long it took (or that it failed)."""
    prefix = _prefix()
    log.info("%s==> %s", prefix, title)
    start = time.monotonic()
    _state.depth += 1
    try:
        yield
    except BaseException:
        log.info("%s    %s: failed after %.1fs", prefix, title, time.monotonic() - start)
        raise
    finally:
        _state.depth -= 1
    log.info("%s    %s: %.1fs", prefix, title, time.monotonic() - start)


def note(message: str) -> None:
    log.info("%s    %s", _prefix(), message)
