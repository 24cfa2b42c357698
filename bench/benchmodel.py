"""The benchmark's results: what a run of bench.py measured, and how it is read back from a build's manifest
and a smoke report. Pure: nothing here runs anything."""

from __future__ import annotations

import platform
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import datetime as dt

    from xenlive.manifest import BuildManifest, BuildRecord
    from xenlive.smoke import SmokeReport

REPO = Path(__file__).resolve().parent.parent
BUILD_PY = REPO / "build.py"
DEFAULT_RECIPE = REPO / "recipes" / "xen-demo.yaml"
# Built after the measured recipe into the same cache: it has the same dom0 and guest image, so it must build
# only its own stages (the config layer and the ISO).
SECOND_RECIPE = REPO / "recipes" / "ci.yaml"
# Built after those: another dom0 (systemd) and another guest image, so its stages are built cold, but the
# Debian packages it shares with the others come from the cache: it must download only what it lacks.
OTHER_RECIPE = REPO / "recipes" / "ci-systemd.yaml"
# The demo with systemd as the init of dom0 and of its guests: booted in the same run, for the comparison.
PROFILE_RECIPES = {DEFAULT_RECIPE: REPO / "recipes" / "xen-demo-systemd.yaml"}
# Measured beside the default recipe in the same run: the demo on the previous Debian suite (a cold build in an
# empty cache of its own, booted as often as the demo), and a recipe with six guests, for how the boot grows with
# the number of guests (built into the demo's cache: it shares dom0 and the guest image).
BOOKWORM_RECIPE = REPO / "recipes" / "xen-demo-bookworm.yaml"
SIX_GUESTS_RECIPE = REPO / "bench" / "six-guests.yaml"
DEFAULT_OUT = REPO / "out" / "bench"
# A plain file (not a template) of the built-in dom0 overlay: editing it must rerun the config stage and the ISO.
EDITED_FILE = REPO / "overlays" / "xenlive" / "etc" / "default" / "xen"
QEMU = "qemu-system-x86_64"
UEFI_CD = "UEFI CD"  # the medium whose first guest is set against the BIOS CD's


class BenchError(Exception):
    """Something the user can act on; main() prints it as one line."""


@dataclass(frozen=True)
class StageTiming:
    name: str
    cached: bool
    seconds: float
    reason: str
    apt_downloaded_bytes: int | None = None  # Debian archive files downloaded when the stage was built
    apt_from_cache_bytes: int | None = None  # ... and taken from the package cache


@dataclass(frozen=True)
class GuestBuild:
    """One guest of the recipe, as the manifest of a build describes it and its image."""

    name: str
    type: str  # pv, pvh, hvm
    image: str
    builder: str  # mmdebstrap, diskimage-builder, netbsd, freebsd, url
    autostart: bool
    stage: StageTiming | None  # the guest-IMAGE stage; None: the image was not built (left out)
    disk_mib: int | None
    squashfs_mib: float | None  # the image's squashfs, as stored on the ISO; None: an older manifest
    left_out: str = ""  # why the build left the guest out


@dataclass(frozen=True)
class BuildRun:
    """One `build.py build`: wall time measured from outside, the rest from the manifest it wrote."""

    wall_seconds: float
    build_seconds: float  # the build record's build_seconds: build_iso() alone, without start-up
    stages: tuple[StageTiming, ...]
    iso_bytes: int
    guests: tuple[GuestBuild, ...] = ()
    iso_sha256: str = ""  # the manifest's
    manifest_sha256: str = ""  # of the manifest file's bytes: the same inputs give the same manifest

    @property
    def rebuilt(self) -> list[str]:
        return [s.name for s in self.stages if not s.cached]

    @property
    def apt_downloaded_bytes(self) -> int:
        return sum(s.apt_downloaded_bytes or 0 for s in self.stages)

    @property
    def apt_from_cache_bytes(self) -> int:
        return sum(s.apt_from_cache_bytes or 0 for s in self.stages)


@dataclass(frozen=True)
class GuestTime:
    name: str
    state: str  # ready, failed, skipped, pending, created
    at: float | None  # seconds from QEMU's start to the verdict
    reason: str = ""
    network: str = "none"  # ok, failed, pending, or none (no network planned)
    network_at: float | None = None
    network_detail: str = ""


@dataclass(frozen=True)
class SmokeTimeline:
    """What the smoke boot showed, in seconds from QEMU's start."""

    accel: str
    passed: bool
    verdict: str
    steps: tuple[tuple[str, float | None], ...]  # (step, seconds) in boot order; None: not reached
    guests: tuple[GuestTime, ...]
    # Guests of the recipe that the build left out of the ISO (their files could not be had), with why:
    # dom0 reports them skipped; "all guests" figures count the guests the ISO holds, and say so.
    left_out: tuple[tuple[str, str], ...] = ()

    def step_at(self, name: str) -> float | None:
        return dict(self.steps).get(name)

    def guest(self, name: str) -> GuestTime | None:
        return next((g for g in self.guests if g.name == name), None)

    @property
    def first_guest_ready(self) -> float | None:
        ready = [g.at for g in self.guests if g.state == "ready" and g.at is not None]
        return min(ready) if ready else None

    @property
    def on_iso(self) -> tuple[GuestTime, ...]:
        """The guests the ISO holds: every default guest but those the build left out."""
        left = dict(self.left_out)
        return tuple(g for g in self.guests if g.name not in left)

    @property
    def all_guests_ready(self) -> float | None:
        """When the last default guest on the ISO became ready; None unless every one of them did."""
        guests = self.on_iso
        if not guests or any(g.state != "ready" or g.at is None for g in guests):
            return None
        return max(g.at for g in guests if g.at is not None)

    @property
    def all_networks_checked(self) -> float | None:
        """When the last network verdict of a ready guest came; None unless every guest was ready and every
        network check passed (a recipe without a network: when the last guest was ready)."""
        every = self.all_guests_ready
        if every is None:
            return None
        checked = [g for g in self.on_iso if g.network != "none"]
        if any(g.network != "ok" or g.network_at is None for g in checked):
            return None
        return max([every, *(g.network_at for g in checked if g.network_at is not None)])

    def not_ready(self) -> str:
        """The guests that never became ready, with why, in words."""
        return ", ".join(
            f"{g.name} {g.state}" + (f" ({g.reason})" if g.reason else "") for g in self.on_iso if g.state != "ready"
        )


@dataclass(frozen=True)
class ProfileBoot:
    """Another recipe booted in the same run to compare with (the demo with systemd as its init)."""

    recipe: str
    init: str  # its dom0.init
    smoke: SmokeTimeline


@dataclass(frozen=True)
class MediumBoot:
    """The recipe's ISO booted from another medium or firmware in the same run."""

    medium: str  # e.g. "UEFI CD"
    smoke: SmokeTimeline


@dataclass(frozen=True)
class RecipeBoots:
    """Another recipe built and booted as a BIOS CD in the same run, to set beside the measured one."""

    recipe: str  # as shown: relative to the checkout
    run: BuildRun  # its build: a cold one in an empty cache of its own, or into the run's cache (see where used)
    boots: tuple[SmokeTimeline, ...]  # every boot, in order; empty: not booted (--skip-smoke)

    @property
    def smoke(self) -> SmokeTimeline | None:
        """The boot to show (median_boot); None if it was not booted."""
        return median_boot(self.boots) if self.boots else None

    def median(self, read: Callable[[SmokeTimeline], float | None]) -> float | None:
        return boots_median(self.boots, read)


@dataclass(frozen=True)
class UserBuilds:
    """The recipe built by an ordinary account (a build in user namespaces of its own) in the same run as root's:
    cold, in an empty cache of its own, then again with nothing changed."""

    account: str
    cold: BuildRun
    no_change: BuildRun


@dataclass(frozen=True)
class Machine:
    nproc: int
    cpu_model: str
    ram_gib: float | None
    kernel: str
    qemu_version: str


@dataclass(frozen=True)
class NamedRun:
    recipe: str  # as shown: relative to the checkout
    run: BuildRun


@dataclass(frozen=True)
class BenchResults:
    date: dt.datetime
    recipe: str
    machine: Machine
    cold: BuildRun | None  # None: skipped (--skip-cold)
    no_change: BuildRun
    one_file: BuildRun
    edited_file: str
    smoke: SmokeTimeline | None  # None: skipped (--skip-smoke)
    second: NamedRun | None = None  # another recipe sharing dom0 and the guest image, into the same cache
    other: NamedRun | None = None  # another recipe with stages of its own, built cold but for shared packages
    moved: BuildRun | None = None  # the no-change rebuild again, after the cache directory moved
    sequential: BuildRun | None = None  # the cold build with --jobs 1, in an empty cache of its own
    init: str = "runit"  # the recipe's dom0.init
    profile: ProfileBoot | None = None  # None: not measured (--skip-profile, or no other profile for the recipe)
    media: tuple[MediumBoot, ...] = ()  # the other boot media measured (empty: --skip-media)
    # Every boot of the ISO as a BIOS CD (`--boots`), in order; `smoke` is the one shown (median_boot).
    # Empty: `smoke` was the only one.
    boots: tuple[SmokeTimeline, ...] = ()
    bookworm: RecipeBoots | None = None  # the demo on bookworm (None: --skip-bookworm, or not the demo)
    six_guests: RecipeBoots | None = None  # the six-guest recipe (None: --skip-six-guests, or not the demo)
    user: UserBuilds | None = None  # the demo built by an ordinary account (None: --skip-user or --skip-cold)

    @property
    def bios_boots(self) -> tuple[SmokeTimeline, ...]:
        return self.boots or ((self.smoke,) if self.smoke is not None else ())


def median_boot(boots: Sequence[SmokeTimeline]) -> SmokeTimeline:
    """The boot to show of several of the same ISO: the first that failed, else the median one by its last
    network verdict (the lower of the middle two for an even count)."""
    failed = next((b for b in boots if not b.passed), None)
    if failed is not None:
        return failed
    ordered = sorted(boots, key=lambda b: b.all_networks_checked or 0.0)
    return ordered[(len(ordered) - 1) // 2]


def median_of(values: Sequence[float | None]) -> float | None:
    """The median of a figure over several boots; None if a boot never got there (or there is none)."""
    if not values or any(v is None for v in values):
        return None
    return statistics.median(v for v in values if v is not None)


def boots_median(boots: Sequence[SmokeTimeline], read: Callable[[SmokeTimeline], float | None]) -> float | None:
    """The median of one figure (`read` off each boot) over several boots of the same ISO."""
    return median_of([read(boot) for boot in boots])


def parse_cpu_model(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model Name") and value.strip():
            return " ".join(value.split())
    return platform.processor() or "unknown CPU"


def parse_mem_gib(meminfo: str) -> float | None:
    for line in meminfo.splitlines():
        key, _, value = line.partition(":")
        if key == "MemTotal" and value.split() and value.split()[0].isdigit():
            return int(value.split()[0]) * 1024 / 2**30
    return None


def build_run_from_manifest(
    manifest: BuildManifest, record: BuildRecord, wall_seconds: float, manifest_sha256: str = ""
) -> BuildRun:
    """A build, from what it built (its manifest, whose file's sha256 is `manifest_sha256`) and how it ran (its
    build record: the stages' times)."""
    iso_bytes = manifest.iso.size
    if manifest.stages is None or iso_bytes is None or manifest.guests is None or not record.stages:
        raise BenchError("the build manifest lacks stages, iso.size or guests, or the build record its stages")
    timings = tuple(
        StageTiming(s.name, s.cached, s.seconds, s.reason, s.apt_downloaded_bytes, s.apt_from_cache_bytes)
        for s in record.stages
    )
    guests = guests_from_manifest(manifest, timings)
    return BuildRun(
        wall_seconds, record.build_seconds, timings, iso_bytes, guests, manifest.iso.sha256, manifest_sha256
    )


def guests_from_manifest(manifest: BuildManifest, stages: tuple[StageTiming, ...]) -> tuple[GuestBuild, ...]:
    stage_of = {s.name: s for s in stages}
    left_out = {e.guest: e.reason for e in manifest.left_out}
    guests = []
    for g in manifest.guests or []:
        image = g.image_name  # xenlive names a guest image after its file (and its stage guest-NAME)
        record = manifest.guest_images.get(image)
        guests.append(
            GuestBuild(
                name=g.name,
                type=g.type,
                image=image,
                builder=g.builder,
                autostart=g.autostart,
                stage=stage_of.get(f"guest-{image}"),
                disk_mib=record.disk_mib if record is not None else None,
                squashfs_mib=record.squashfs_mib if record is not None else None,
                left_out=left_out.get(g.name, ""),
            )
        )
    return tuple(guests)


def smoke_timeline(report: SmokeReport, verdict_text: str, left_out: Sequence[tuple[str, str]] = ()) -> SmokeTimeline:
    from xenlive.smoke import STEPS

    state = report.state
    steps = tuple((step, state.steps.get(step)) for step in STEPS)
    guests = tuple(
        GuestTime(g.name, g.state, g.at, g.reason, g.network, g.network_at, g.network_detail) for g in report.guests
    )
    return SmokeTimeline(report.accel, report.passed, verdict_text, steps, guests, tuple(left_out))
