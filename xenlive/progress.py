"""Progress for long work: nested, timed steps logged as they start and end."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator

log = logging.getLogger("xenlive")

_depth = 0


@contextlib.contextmanager
def step(title: str) -> Iterator[None]:
    """Log `title`, run the block, log how long it took (or that it failed)."""
    global _depth
    indent = "  " * _depth
    log.info("%s==> %s", indent, title)
    start = time.monotonic()
    _depth += 1
    try:
        yield
    except BaseException:
        log.info("%s    %s: failed after %.1fs", indent, title, time.monotonic() - start)
        raise
    finally:
        _depth -= 1
    log.info("%s    %s: %.1fs", indent, title, time.monotonic() - start)


def note(message: str) -> None:
    log.info("%s    %s", "  " * _depth, message)
