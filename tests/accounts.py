"""bench/asuser.py (xenlive run as an ordinary account) for the tests. The bench imports it as a module beside
its script; the tests import it the same way, through this module, so that it is one module whichever test
file comes first (a `bench` package import would find bench/bench.py once bench/ is on the path)."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import asuser  # noqa: E402

__all__ = ["asuser"]
