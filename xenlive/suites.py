"""The Debian suites xenlive builds dom0 and Debian guests from, and what each ships that xenlive depends on.

A new suite is one row of SUITES (and whatever its packages need besides, chosen by suite where they differ).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Suite:
    name: str
    xen: str  # the Xen version its xen-system-amd64 depends on: xen-hypervisor-X.Y-amd64, /usr/lib/xen-X.Y


SUITES = {suite.name: suite for suite in (Suite("bookworm", xen="4.17"), Suite("trixie", xen="4.20"))}
# Debian suite -> the Xen version it ships.
XEN_BY_SUITE = {name: suite.xen for name, suite in SUITES.items()}
# The suite of dom0, and of the Debian guest images that name none: Debian's stable release.
DEFAULT_SUITE = "trixie"


def supported_suite(value: str) -> str:
    """A suite xenlive builds (for pydantic's AfterValidator)."""
    if value not in SUITES:
        raise ValueError(f"unsupported suite '{value}' (hint: supported: {', '.join(SUITES)})")
    return value


def swap_suite(word: str, old: str, new: str) -> str:
    """An archive suite of `old` with `new` in its place: trixie -> bookworm, trixie-updates -> bookworm-updates;
    any other word (a component, another archive's suite) as it is."""
    if word == old:
        return new
    if word.startswith(f"{old}-"):
        return new + word[len(old) :]
    return word
