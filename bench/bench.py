#!/usr/bin/env python3
"""Measure xenlive on this machine and record the figures in BENCHMARKS.md.

Builds run through the real command line (`build.py build`, a subprocess, timed from outside);
the smoke boot runs in-process through `xenlive.smoke.run_smoke`, whose report holds the timeline
(seconds from QEMU's start to each step and each guest's verdict).

Layout: constants and targets; the results model; pure functions that turn results into Markdown
and splice it between the markers of BENCHMARKS.md; then the functions that run things; then main().
Run as root (builds need root) on an otherwise idle machine: `make bench`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import logging
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xenlive.manifest import BuildManifest
    from xenlive.smoke import SmokeReport

log = logging.getLogger("bench")

REPO = Path(__file__).resolve().parent.parent
BUILD_PY = REPO / "build.py"
DEFAULT_RECIPE = REPO / "recipes" / "xen-demo.yaml"
DEFAULT_OUT = REPO / "out" / "bench"
# A plain file (not a template) of the built-in dom0 overlay: editing it must rerun the config stage and the ISO.
EDITED_FILE = REPO / "overlays" / "xenlive" / "etc" / "default" / "xen"
QEMU = "qemu-system-x86_64"

# The default recipe's section of BENCHMARKS.md lies between these; another recipe's between the same
# markers with its name (the recipe file's stem), e.g. <!-- bench:begin ci-dib --> ... <!-- bench:end ci-dib -->.
BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"
SECTION_NAME = re.compile(r"[A-Za-z0-9._-]+")
NEW_FILE_HEAD = (
    "# xenlive benchmarks\n\n"
    "Figures measured by `bench/bench.py` (`make bench`); the part between a recipe's bench markers is rewritten "
    "each time that recipe is measured.\n"
)

MIB = 2**20
MB = 10**6

# Targets, in the unit each figure is shown in (seconds, MiB).
COLD_BUILD_TARGET = 240.0
NO_CHANGE_TARGET = 5.0
ONE_FILE_TARGET = 20.0
FIRST_GUEST_TARGET = 45.0
ALL_GUESTS_TARGET = 60.0
ISO_TARGET_MIB = 300 * MB / MIB  # the target is 300 MB (decimal), i.e. 286.1 MiB

NO_SMOKE = "skipped (--skip-smoke)"


class BenchError(Exception):
    """Something the user can act on; main() prints it as one line."""


# --- results -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageTiming:
    name: str
    cached: bool
    seconds: float
    reason: str


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
    build_seconds: float  # the manifest's build_seconds: build_iso() alone, without start-up
    stages: tuple[StageTiming, ...]
    iso_bytes: int
    guests: tuple[GuestBuild, ...] = ()

    @property
    def rebuilt(self) -> list[str]:
        return [s.name for s in self.stages if not s.cached]


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

    def step_at(self, name: str) -> float | None:
        return dict(self.steps).get(name)

    def guest(self, name: str) -> GuestTime | None:
        return next((g for g in self.guests if g.name == name), None)

    @property
    def first_guest_ready(self) -> float | None:
        ready = [g.at for g in self.guests if g.state == "ready" and g.at is not None]
        return min(ready) if ready else None

    @property
    def all_guests_ready(self) -> float | None:
        """When the last default guest became ready; None unless every one of them did."""
        if not self.guests or any(g.state != "ready" or g.at is None for g in self.guests):
            return None
        return max(g.at for g in self.guests if g.at is not None)

    def not_ready(self) -> str:
        """The guests that never became ready, with why, in words."""
        return ", ".join(
            f"{g.name} {g.state}" + (f" ({g.reason})" if g.reason else "") for g in self.guests if g.state != "ready"
        )


@dataclass(frozen=True)
class Machine:
    nproc: int
    cpu_model: str
    ram_gib: float | None
    kernel: str
    qemu_version: str


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


# --- report (pure) -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One row of the summary table. `value` None with `ran` True: measured, but never reached (e.g. a guest)."""

    label: str
    value: float | None
    unit: str
    target: float | None  # None: shown for information, no target
    target_text: str
    ran: bool
    note: str = ""


def verdict(figure: Figure) -> str:
    """met / missed against the target; a figure that was not reached misses it; skipped ones were not run."""
    if figure.target is None:
        return ""
    if not figure.ran:
        return "not run"
    if figure.value is None:
        return "missed"
    return "met" if figure.value <= figure.target else "missed"


def format_value(figure: Figure) -> str:
    if not figure.ran:
        return "not run"
    if figure.value is None:
        return "not reached"
    return f"{figure.value:.1f} {figure.unit}"


def figures(results: BenchResults) -> list[Figure]:
    """The summary table's rows, each measured figure against its target."""
    cold, no_change, one_file, smoke = results.cold, results.no_change, results.one_file, results.smoke
    rows = [
        Figure(
            "Cold build (empty cache)",
            cold.wall_seconds if cold else None,
            "s",
            COLD_BUILD_TARGET,
            "≤ 4 min",
            ran=cold is not None,
            note=f"build_iso {cold.build_seconds:.1f} s" if cold else "skipped (--skip-cold)",
        ),
        Figure(
            "No-change rebuild",
            no_change.wall_seconds,
            "s",
            NO_CHANGE_TARGET,
            "≤ 5 s",
            ran=True,
            note=_rebuilt_note(no_change),
        ),
        Figure(
            "Rebuild after editing one overlay file",
            one_file.wall_seconds,
            "s",
            ONE_FILE_TARGET,
            "≤ 20 s",
            ran=True,
            note=f"{results.edited_file}; {_rebuilt_note(one_file)}",
        ),
        Figure(
            "ISO size",
            no_change.iso_bytes / MIB,
            "MiB",
            ISO_TARGET_MIB,
            f"≤ 300 MB ({ISO_TARGET_MIB:.1f} MiB)",
            ran=True,
            note=f"{no_change.iso_bytes} bytes",
        ),
    ]
    for step, label in (("xen", "Xen booted"), ("dom0", "dom0 up"), ("toolstack", "Toolstack up")):
        at = smoke.step_at(step) if smoke else None
        rows.append(Figure(label, at, "s", None, "", ran=smoke is not None, note="" if smoke else NO_SMOKE))
    first = smoke.first_guest_ready if smoke else None
    every = smoke.all_guests_ready if smoke else None
    rows += [
        Figure(
            "First guest ready",
            first,
            "s",
            FIRST_GUEST_TARGET,
            "≤ 45 s",
            ran=smoke is not None,
            note=_guests_note(smoke, first, ""),
        ),
        Figure(
            "All default guests ready",
            every,
            "s",
            ALL_GUESTS_TARGET,
            "≤ 60 s",
            ran=smoke is not None,
            note=_guests_note(smoke, every, f"{len(smoke.guests)} guest(s)" if smoke else ""),
        ),
    ]
    return rows


def _rebuilt_note(run: BuildRun) -> str:
    rebuilt = run.rebuilt
    return f"reran: {', '.join(rebuilt)}" if rebuilt else "every stage cached"


def _guests_note(smoke: SmokeTimeline | None, value: float | None, reached_note: str) -> str:
    if smoke is None:
        return NO_SMOKE
    if value is not None:
        return reached_note
    if not smoke.guests:
        return "the recipe starts no guest"
    return f"not ready: {smoke.not_ready()}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown pipe table with padded columns; a `|` inside a cell is escaped."""
    cells = [[c.replace("|", "\\|") for c in row] for row in [header, *rows]]
    if any(len(row) != len(header) for row in cells):
        raise ValueError("every row needs one cell per column")
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |"

    return [line(cells[0]), line(["-" * w for w in widths]), *(line(row) for row in cells[1:])]


def summary_table(results: BenchResults) -> list[str]:
    rows = [[f.label, format_value(f), f.target_text, verdict(f), f.note] for f in figures(results)]
    return markdown_table(["Figure", "Measured", "Target", "Result", "Notes"], rows)


def stage_table(run: BuildRun) -> list[str]:
    rows = [[s.name, "cached" if s.cached else "built", f"{s.seconds:.1f}", s.reason] for s in run.stages]
    rows.append(["total (build_iso)", "", f"{run.build_seconds:.1f}", ""])
    rows.append(["wall time of `build.py build`", "", f"{run.wall_seconds:.1f}", "includes start-up and publishing"])
    return markdown_table(["Stage", "Result", "Seconds", "Why it ran"], rows)


def timeline_table(smoke: SmokeTimeline) -> list[str]:
    rows = [
        [step, "-" if at is None else f"{at:.1f}", "reached" if at is not None else "not reached"]
        for step, at in smoke.steps
    ]
    for guest in smoke.guests:
        result = guest.state + (f": {guest.reason}" if guest.reason else "")
        rows.append([f"guest:{guest.name}", "-" if guest.at is None else f"{guest.at:.1f}", result])
        if guest.network != "none":
            result = guest.network + (f": {guest.network_detail}" if guest.network_detail else "")
            rows.append(
                [f"network:{guest.name}", "-" if guest.network_at is None else f"{guest.network_at:.1f}", result]
            )
    return markdown_table(["Step", "Seconds", "Result"], rows)


def guest_table(guests: Sequence[GuestBuild], smoke: SmokeTimeline | None) -> list[str]:
    """One row per guest: its image and how long that took to build, its sizes, when it was ready at boot."""
    header = [
        "Guest",
        "Type",
        "Image",
        "Builder",
        "Image build (s)",
        "Disk (MiB)",
        "On ISO (MiB)",
        "Ready at (s)",
        "Network at (s)",
        "Notes",
    ]
    rows = []
    for guest in guests:
        notes = [f"left out: {guest.left_out}"] if guest.left_out else []
        if not guest.autostart:
            notes.append("autostart: no")
        ready, network, boot_notes = _boot_cells(guest, smoke)
        rows.append(
            [
                guest.name,
                guest.type,
                guest.image,
                guest.builder,
                _image_build_cell(guest),
                "-" if guest.disk_mib is None else str(guest.disk_mib),
                "-" if guest.squashfs_mib is None else f"{guest.squashfs_mib:.1f}",
                ready,
                network,
                "; ".join([*notes, *boot_notes]),
            ]
        )
    return markdown_table(header, rows)


def _image_build_cell(guest: GuestBuild) -> str:
    if guest.left_out:
        return "left out"
    if guest.stage is None:
        return "-"
    return "cached" if guest.stage.cached else f"{guest.stage.seconds:.1f}"


def _boot_cells(guest: GuestBuild, smoke: SmokeTimeline | None) -> tuple[str, str, list[str]]:
    """When the guest was ready and its network checked (seconds, or the verdict when it was not a good one),
    and notes on what went wrong."""
    if smoke is None:
        return "not run", "not run", []
    boot = smoke.guest(guest.name)
    if boot is None:
        return "not started", "-", []
    notes = []
    if boot.reason and not guest.left_out:  # a left-out guest is skipped at boot for the reason already shown
        notes.append(f"{boot.state}: {boot.reason}")
    if boot.network_detail and boot.network != "ok":
        notes.append(f"network {boot.network}: {boot.network_detail}")
    ready = f"{boot.at:.1f}" if boot.state == "ready" and boot.at is not None else boot.state
    if boot.network == "none":
        network = "-"
    elif boot.network == "ok" and boot.network_at is not None:
        network = f"{boot.network_at:.1f}"
    else:
        network = boot.network
    return ready, network, notes


def render_section(results: BenchResults, name: str = "") -> str:
    """The Markdown this script owns in BENCHMARKS.md (what goes between the markers of section `name`)."""
    m = results.machine
    ram = f"{m.ram_gib:.1f} GiB RAM" if m.ram_gib is not None else "RAM unknown"
    accel = results.smoke.accel if results.smoke else "not used (smoke skipped)"
    lines = [
        f"## Latest run: {name}" if name else "## Latest run",
        "",
        f"- Date: {results.date.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {m.nproc} CPU(s), {m.cpu_model}, {ram}, kernel {m.kernel}",
        f"- QEMU: {m.qemu_version}; accelerator: {accel}",
        f"- Recipe: `{results.recipe}`",
        "",
        *summary_table(results),
        "",
        "Times are wall-clock seconds; boot times count from QEMU's start.",
    ]
    if results.cold is not None:
        lines += ["", "### Cold build, per stage", "", *stage_table(results.cold)]
    # Without a cold build, the no-change rebuild's manifest still has every guest and its sizes.
    guests_from = results.cold or results.no_change
    if guests_from.guests:
        which = "the cold build" if results.cold is not None else "the no-change rebuild (no cold build measured)"
        lines += [
            "",
            "### Guest images",
            "",
            f"Image build: seconds of the guest image's stage in {which}; cached: not built in that run. "
            "On ISO: the image's squashfs. Guests that share an image share its build and its squashfs.",
            "",
            *guest_table(guests_from.guests, results.smoke),
        ]
    if results.smoke is not None:
        lines += ["", "### Smoke boot timeline", "", f"{results.smoke.verdict}", "", *timeline_table(results.smoke)]
    return "\n".join(lines) + "\n"


def section_name(recipe: Path) -> str:
    """The name of a recipe's section of BENCHMARKS.md: none for the default recipe, else the file's stem."""
    if recipe.resolve() == DEFAULT_RECIPE:
        return ""
    if not SECTION_NAME.fullmatch(recipe.stem):
        raise BenchError(
            f"{recipe}: its section of the report is named after the file, which needs a name of letters, "
            "digits, '.', '_' and '-' only: rename or copy the recipe"
        )
    return recipe.stem


def markers(name: str) -> tuple[str, str]:
    """The comments that begin and end section `name` ("": the default recipe's)."""
    if not name:
        return BEGIN, END
    return f"<!-- bench:begin {name} -->", f"<!-- bench:end {name} -->"


def replace_marked(text: str, section: str, name: str = "") -> str:
    """`text` with `section` between the markers of section `name`; everything outside them is kept as it is
    (other sections too).

    Without those markers the section is appended at the end (to a standard heading when `text` is empty).
    """
    begin, end = markers(name)
    body = f"{begin}\n{section.rstrip()}\n{end}"
    begins, ends = text.count(begin), text.count(end)
    if begins == 0 and ends == 0:
        head = text if text.strip() else NEW_FILE_HEAD
        head = head.rstrip("\n") + "\n\n"
        return f"{head}{body}\n"
    if begins != 1 or ends != 1 or text.index(begin) > text.index(end):
        raise BenchError(
            f"expected one {begin} followed by one {end}, found {begins} and {ends}: fix the markers by hand"
        )
    head, rest = text.split(begin)
    _, tail = rest.split(end)
    return f"{head}{body}{tail}"


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


def build_run_from_manifest(manifest: BuildManifest, wall_seconds: float) -> BuildRun:
    stages, build_seconds, iso_bytes = manifest.stages, manifest.build_seconds, manifest.iso.size
    if stages is None or build_seconds is None or iso_bytes is None or manifest.guests is None:
        raise BenchError("the build manifest lacks stages, build_seconds, iso.size or guests")
    timings = tuple(StageTiming(s.name, s.cached, s.seconds, s.reason) for s in stages)
    return BuildRun(wall_seconds, build_seconds, timings, iso_bytes, guests_from_manifest(manifest, timings))


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


def smoke_timeline(report: SmokeReport, verdict_text: str) -> SmokeTimeline:
    from xenlive.smoke import STEPS

    state = report.state
    steps = tuple((step, state.steps.get(step)) for step in STEPS)
    guests = tuple(
        GuestTime(g.name, g.state, g.at, g.reason, g.network, g.network_at, g.network_detail) for g in report.guests
    )
    return SmokeTimeline(report.accel, report.passed, verdict_text, steps, guests)


# --- running -------------------------------------------------------------------------------------


def run_build(recipe: Path, out: Path, cache_dir: Path | None, manifest_name: str) -> BuildRun:
    """Run `build.py build` as a user would; time it; read back the manifest it wrote."""
    argv = [sys.executable, str(BUILD_PY), "build", str(recipe), "-o", str(out)]
    if cache_dir is not None:
        argv += ["--cache-dir", str(cache_dir)]
    log.info("bench: $ %s", shlex.join(argv))
    start = time.monotonic()
    code = _run_child(argv)
    seconds = time.monotonic() - start
    if code != 0:
        raise BenchError(f"`{shlex.join(argv)}` failed with exit code {code} after {seconds:.1f} s")
    from xenlive.errors import XenliveError
    from xenlive.manifest import read_manifest

    manifest_path = out / manifest_name
    try:
        manifest = read_manifest(manifest_path)
    except (OSError, XenliveError) as exc:
        raise BenchError(f"{manifest_path}: cannot read the build manifest: {exc}") from exc
    run = build_run_from_manifest(manifest, seconds)
    log.info("bench: %.1f s wall, %s", seconds, _rebuilt_note(run))
    return run


def _run_child(argv: list[str]) -> int:
    """Run a command with its output on our stderr (stdout stays for the table); stop it cleanly if we are stopped.

    Ctrl-C reaches the child from the terminal; a SIGTERM sent to us is passed on to it. Either way it gets to
    undo its mounts, and we wait for that before going on.
    """
    proc = subprocess.Popen(argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=sys.stderr)

    def forward(signum: int, frame: FrameType | None) -> None:
        proc.send_signal(signal.SIGTERM)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.wait()
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def appended_line(path: Path, line: str) -> Iterator[None]:
    """`path` with `line` appended for the duration of the block; its exact former content is always restored."""
    original = path.read_bytes()
    separator = b"\n" if original and not original.endswith(b"\n") else b""
    try:
        path.write_bytes(original + separator + line.encode() + b"\n")
        yield
    finally:
        path.write_bytes(original)


def run_smoke_timeline(iso: Path, out: Path, timeout: float) -> SmokeTimeline:
    from xenlive.errors import XenliveError
    from xenlive.smoke import SmokeOptions, run_smoke

    lines: list[str] = []

    def echo(line: str) -> None:
        lines.append(line)
        print(line, file=sys.stderr, flush=True)

    stem = iso.name.removesuffix(".iso")
    try:
        options = SmokeOptions(timeout, junit=out / f"{stem}.smoke.xml", serial_log=out / f"{stem}.serial.log")
        report = run_smoke(iso, options, echo=echo)
    except XenliveError as exc:
        raise BenchError(f"smoke boot of {iso}: {exc}") from exc
    verdict_text = next((line for line in reversed(lines) if line.startswith(("PASS:", "FAIL:"))), "")
    return smoke_timeline(report, verdict_text)


def find_machine() -> Machine:
    return Machine(
        nproc=len(os.sched_getaffinity(0)),
        cpu_model=parse_cpu_model(_read_text(Path("/proc/cpuinfo"))),
        ram_gib=parse_mem_gib(_read_text(Path("/proc/meminfo"))),
        kernel=platform.release(),
        qemu_version=_qemu_version(),
    )


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _qemu_version() -> str:
    try:
        proc = subprocess.run(
            [QEMU, "--version"], capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False
        )
    except OSError:
        return f"{QEMU} not found"
    first = proc.stdout.strip().splitlines()
    return first[0] if first else "unknown"


def write_report(path: Path, section: str, name: str = "") -> None:
    """Splice `section` between the markers of section `name` in `path` (created if missing), keeping its owner
    and mode."""
    try:
        text = path.read_text(encoding="utf-8")
        like, mode = path.stat(), path.stat().st_mode & 0o7777
    except FileNotFoundError:
        text, like, mode = "", path.parent.stat(), 0o644
    new = replace_marked(text, section, name)
    from xenlive.fsutil import atomic_path

    with atomic_path(path, mode) as tmp:
        tmp.write_text(new, encoding="utf-8")
        if os.geteuid() == 0:
            os.chown(tmp, like.st_uid, like.st_gid)  # run as root in a user's checkout: leave the file theirs


def check_wipeable(cache_dir: Path) -> None:
    """Refuse to wipe a directory that holds the checkout or a home directory (a mistyped --cache-dir)."""
    resolved = cache_dir.resolve()
    for precious in (REPO, Path.home().resolve(), Path("/")):
        if resolved == precious or resolved in precious.parents:
            raise BenchError(f"--cache-dir {cache_dir} contains {precious}: refusing to wipe it for the cold build")


def remove_cache(cache_dir: Path) -> None:
    """rm -rf of a stage cache that first releases any mount a build left below it, and never deletes through one."""
    from xenlive.errors import XenliveError
    from xenlive.fsutil import remove_tree

    try:
        remove_tree(cache_dir)
    except (XenliveError, OSError) as exc:
        raise BenchError(f"cannot remove the cache {cache_dir}: {exc}") from exc


def _remove_temporary_cache(cache_dir: Path) -> None:
    try:
        remove_cache(cache_dir)
    except BenchError as exc:
        log.warning("bench: warning: %s", exc)  # do not hide the figures or the error that got us here


def default_cache_base() -> Path:
    """Where xenlive keeps its cache by default; the temporary cold cache goes beside it (same filesystem)."""
    from xenlive.paths import default_cache_dir

    return default_cache_dir().parent


def measure(args: argparse.Namespace) -> BenchResults:
    from xenlive.errors import XenliveError
    from xenlive.recipe import load_recipe

    recipe: Path = args.recipe.resolve()
    out: Path = args.out.resolve()
    try:
        name = load_recipe(recipe).recipe.iso.name
    except XenliveError as exc:
        raise BenchError(str(exc)) from exc
    if not EDITED_FILE.is_file():
        raise BenchError(f"{EDITED_FILE}: not found (the overlay file this benchmark edits)")
    out.mkdir(parents=True, exist_ok=True)
    machine = find_machine()
    manifest = f"{name}.manifest.json"

    with contextlib.ExitStack() as cleanup:
        cache_dir: Path | None = args.cache_dir.resolve() if args.cache_dir else None
        cold: BuildRun | None = None
        if args.skip_cold:
            log.info("bench: warm-up build (not measured), so that the next one has nothing to do")
            run_build(recipe, out, cache_dir, manifest)
        else:
            if cache_dir is None:
                base = default_cache_base()
                base.mkdir(parents=True, exist_ok=True)
                cache_dir = Path(tempfile.mkdtemp(prefix="xenlive-bench-", dir=base))
                cleanup.callback(_remove_temporary_cache, cache_dir)
            else:
                check_wipeable(cache_dir)
                remove_cache(cache_dir)
            log.info("bench: cold build with the empty cache %s", cache_dir)
            cold = run_build(recipe, out, cache_dir, manifest)

        log.info("bench: no-change rebuild")
        no_change = run_build(recipe, out, cache_dir, manifest)

        stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        edited = _shown(EDITED_FILE)
        log.info("bench: rebuild after appending a comment to %s (restored afterwards)", edited)
        # Its own output directory, so that OUT/NAME.iso stays the ISO of the recipe as it is.
        with appended_line(EDITED_FILE, f"# bench {stamp}"):
            one_file = run_build(recipe, out / "one-file-edit", cache_dir, manifest)

    smoke = None
    if not args.skip_smoke:
        log.info("bench: smoke boot of %s", out / f"{name}.iso")
        smoke = run_smoke_timeline(out / f"{name}.iso", out, args.smoke_timeout)

    return BenchResults(
        date=dt.datetime.now(dt.UTC),
        recipe=_shown(recipe),
        machine=machine,
        cold=cold,
        no_change=no_change,
        one_file=one_file,
        edited_file=edited,
        smoke=smoke,
    )


def _shown(path: Path) -> str:
    return path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else str(path)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Measure build and boot times of xenlive on this machine (run as root, on an idle machine)."
    )
    parser.add_argument(
        "--recipe",
        type=Path,
        default=DEFAULT_RECIPE,
        help="recipe to build (default: the demo); with --write, a recipe other than the demo gets its own section "
        "of FILE, named after the recipe file (<!-- bench:begin NAME --> ... <!-- bench:end NAME -->)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="stage cache; WIPED before the cold build (default: a fresh temporary one, removed afterwards; "
        "with --skip-cold, xenlive's own default cache)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (default: out/bench)")
    parser.add_argument(
        "--write", type=Path, default=None, metavar="FILE", help="update the recipe's section of FILE, and only that"
    )
    parser.add_argument("--skip-cold", action="store_true", help="do not measure the cold build")
    parser.add_argument("--skip-smoke", action="store_true", help="do not boot the ISO")
    parser.add_argument("--smoke-timeout", type=float, default=900, help="seconds (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if os.geteuid() != 0:
        print("bench: builds need root: run it as root (e.g. `sudo make bench`)", file=sys.stderr)
        return 1
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))  # import xenlive from this checkout, as build.py does
    from xenlive.run import terminate_as_interrupt

    try:
        name = section_name(args.recipe)  # before the builds: a recipe it cannot name fails at once
        with terminate_as_interrupt():
            results = measure(args)
        section = render_section(results, name)
        if args.write is not None:
            write_report(args.write, section, name)
            log.info("bench: wrote %s", args.write)
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    print(section, end="")
    if results.smoke is not None and not results.smoke.passed:
        print(f"bench: the smoke boot failed: {results.smoke.verdict}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
