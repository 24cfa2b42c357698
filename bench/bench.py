#!/usr/bin/env python3
"""Measure xenlive on this machine and record the figures in BENCHMARKS.md.

Builds run through the real command line (`build.py build`, a subprocess, timed from outside);
the smoke boot runs in-process through `xenlive.smoke.run_smoke`, whose report holds the timeline
(seconds from QEMU's start to each step and each guest's verdict).

Layout: the results model and how it is read back (benchmodel.py), the pure functions that turn results
into Markdown and splice it between the markers of BENCHMARKS.md (benchreport.py); here, the functions
that run things, then main().
Run as root (builds need root) on an otherwise idle machine: `make bench`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import logging
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType

from benchmodel import (
    BUILD_PY,
    DEFAULT_OUT,
    DEFAULT_RECIPE,
    EDITED_FILE,
    PROFILE_RECIPES,
    QEMU,
    REPO,
    BenchError,
    BenchResults,
    BuildRun,
    GuestBuild,
    GuestTime,
    Machine,
    MediumBoot,
    ProfileBoot,
    SmokeTimeline,
    StageTiming,
    build_run_from_manifest,
    guests_from_manifest,
    parse_cpu_model,
    parse_mem_gib,
    smoke_timeline,
)
from benchreport import (
    BEGIN,
    END,
    Figure,
    figures,
    format_value,
    guest_table,
    markdown_table,
    markers,
    media_table,
    profile_table,
    rebuilt_note,
    render_section,
    replace_marked,
    section_name,
    stage_table,
    summary_table,
    timeline_table,
    verdict,
)

__all__ = [
    "BEGIN",
    "DEFAULT_RECIPE",
    "END",
    "BenchError",
    "BenchResults",
    "BuildRun",
    "Figure",
    "GuestBuild",
    "GuestTime",
    "Machine",
    "MediumBoot",
    "ProfileBoot",
    "SmokeTimeline",
    "StageTiming",
    "build_run_from_manifest",
    "figures",
    "format_value",
    "guest_table",
    "guests_from_manifest",
    "markdown_table",
    "markers",
    "media_table",
    "parse_cpu_model",
    "parse_mem_gib",
    "profile_table",
    "render_section",
    "replace_marked",
    "section_name",
    "smoke_timeline",
    "stage_table",
    "summary_table",
    "timeline_table",
    "verdict",
]

log = logging.getLogger("bench")


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
    log.info("bench: %.1f s wall, %s", seconds, rebuilt_note(run))
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


def run_smoke_timeline(iso: Path, out: Path, timeout: float, *, uefi: bool = False, usb: bool = False) -> SmokeTimeline:
    from xenlive.errors import XenliveError
    from xenlive.smoke import SmokeOptions, run_smoke

    lines: list[str] = []

    def echo(line: str) -> None:
        lines.append(line)
        print(line, file=sys.stderr, flush=True)

    stem = iso.name.removesuffix(".iso") + ("-uefi" if uefi else "") + ("-usb" if usb else "")
    try:
        options = SmokeOptions(
            timeout, junit=out / f"{stem}.smoke.xml", serial_log=out / f"{stem}.serial.log", uefi=uefi, usb=usb
        )
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
        loaded = load_recipe(recipe)
    except XenliveError as exc:
        raise BenchError(str(exc)) from exc
    name = loaded.recipe.iso.name
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

        # The other profile is built now (sharing the cache), so that nothing builds while the ISOs boot.
        other = None if args.skip_profile or args.skip_smoke else (args.profile_recipe or PROFILE_RECIPES.get(recipe))
        other_iso = build_profile(other.resolve(), out / "profile", cache_dir) if other is not None else None

    smoke = None
    profile = None
    media: list[MediumBoot] = []
    iso = out / f"{name}.iso"
    if not args.skip_smoke:
        log.info("bench: smoke boot of %s", iso)
        smoke = run_smoke_timeline(iso, out, args.smoke_timeout)
        if other_iso is not None:
            recipe_shown, init, profile_iso = other_iso
            log.info("bench: smoke boot of %s (dom0.init %s), to compare", profile_iso, init)
            profile = ProfileBoot(
                recipe_shown, init, run_smoke_timeline(profile_iso, out / "profile", args.smoke_timeout)
            )
        if not args.skip_media:
            for medium, uefi, usb in (("UEFI CD", True, False), ("USB stick (BIOS)", False, True)):
                log.info("bench: smoke boot of %s as a %s", iso, medium)
                media.append(MediumBoot(medium, run_smoke_timeline(iso, out, args.smoke_timeout, uefi=uefi, usb=usb)))

    return BenchResults(
        date=dt.datetime.now(dt.UTC),
        recipe=_shown(recipe),
        machine=machine,
        cold=cold,
        no_change=no_change,
        one_file=one_file,
        edited_file=edited,
        smoke=smoke,
        init=loaded.recipe.dom0.init,
        profile=profile,
        media=tuple(media),
    )


def build_profile(recipe: Path, out: Path, cache_dir: Path | None) -> tuple[str, str, Path]:
    """Build another recipe to compare with (with the same cache: only what differs is built): the recipe as
    shown, its dom0.init, its ISO."""
    from xenlive.errors import XenliveError
    from xenlive.recipe import load_recipe

    try:
        loaded = load_recipe(recipe)
    except XenliveError as exc:
        raise BenchError(str(exc)) from exc
    name = loaded.recipe.iso.name
    log.info("bench: build of %s (dom0.init %s), to compare", _shown(recipe), loaded.recipe.dom0.init)
    out.mkdir(parents=True, exist_ok=True)
    run_build(recipe, out, cache_dir, f"{name}.manifest.json")
    return _shown(recipe), loaded.recipe.dom0.init, out / f"{name}.iso"


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
    parser.add_argument(
        "--profile-recipe",
        type=Path,
        default=None,
        help="another recipe to build and boot in the same run, to compare boot times with "
        "(default for the demo: recipes/xen-demo-systemd.yaml, the demo with systemd as its init)",
    )
    parser.add_argument("--skip-profile", action="store_true", help="do not build and boot the other profile")
    parser.add_argument(
        "--skip-media", action="store_true", help="boot the ISO only as a BIOS CD (not also as a UEFI CD and USB stick)"
    )
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
