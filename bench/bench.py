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
import hashlib
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
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from asuser import Account, ensure_account, give, xenlive_argv
from benchmodel import (
    BOOKWORM_RECIPE,
    BUILD_PY,
    DEFAULT_OUT,
    DEFAULT_RECIPE,
    EDITED_FILE,
    OTHER_RECIPE,
    PROFILE_RECIPES,
    QEMU,
    REPO,
    SECOND_RECIPE,
    SIX_GUESTS_RECIPE,
    UEFI_CD,
    BenchError,
    BenchResults,
    BuildRun,
    GuestBuild,
    GuestTime,
    Machine,
    MediumBoot,
    NamedRun,
    ProfileBoot,
    RecipeBoots,
    SmokeTimeline,
    StageTiming,
    UserBuilds,
    build_run_from_manifest,
    guests_from_manifest,
    median_boot,
    parse_cpu_model,
    parse_mem_gib,
    smoke_timeline,
)
from benchreport import (
    BEGIN,
    END,
    Figure,
    against_reference,
    figures,
    format_value,
    growth,
    guest_ready_table,
    guest_table,
    markdown_table,
    markers,
    media_table,
    peer_table,
    profile_table,
    rebuilt_note,
    render_section,
    replace_marked,
    section_name,
    stage_table,
    suite_table,
    summary_table,
    timeline_table,
    user_table,
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
    "NamedRun",
    "ProfileBoot",
    "RecipeBoots",
    "SmokeTimeline",
    "StageTiming",
    "against_reference",
    "build_run_from_manifest",
    "figures",
    "format_value",
    "growth",
    "guest_ready_table",
    "guest_table",
    "guests_from_manifest",
    "markdown_table",
    "markers",
    "media_table",
    "median_boot",
    "parse_cpu_model",
    "parse_mem_gib",
    "peer_table",
    "profile_table",
    "render_section",
    "replace_marked",
    "section_name",
    "smoke_timeline",
    "stage_table",
    "suite_table",
    "summary_table",
    "timeline_table",
    "user_table",
    "verdict",
]

log = logging.getLogger("bench")
DEFAULT_ACCOUNT = "xenlive-bench"  # the ordinary account whose build is set beside root's


def build_argv(
    recipe: Path, out: Path, cache_dir: Path | None, extra: Sequence[str] = (), account: Account | None = None
) -> list[str]:
    """`build.py build` of `recipe` into `out`: as this process (root), or as the ordinary `account`."""
    args = ["build", str(recipe), "-o", str(out), *extra]
    if cache_dir is not None:
        args += ["--cache-dir", str(cache_dir)]
    if account is None:
        return [sys.executable, str(BUILD_PY), *args]
    try:
        return xenlive_argv(account, args)
    except (OSError, RuntimeError) as exc:
        raise BenchError(f"cannot run xenlive as {account.name}: {exc}") from exc


def run_build(
    recipe: Path,
    out: Path,
    cache_dir: Path | None,
    manifest_name: str,
    extra: Sequence[str] = (),
    account: Account | None = None,
) -> BuildRun:
    """Run `build.py build` as a user would (as root, or as the ordinary `account`); time it; read back the
    manifest and the build record it wrote."""
    argv = build_argv(recipe, out, cache_dir, extra, account)
    log.info("bench: $ %s", shlex.join(argv) if account is None else f"(as {account.name}) {shlex.join(argv)}")
    start = time.monotonic()
    code = _run_child(argv)
    seconds = time.monotonic() - start
    if code != 0:
        raise BenchError(f"`{shlex.join(argv)}` failed with exit code {code} after {seconds:.1f} s")
    from xenlive.errors import XenliveError
    from xenlive.manifest import build_record_path, read_build_record, read_manifest

    manifest_path = out / manifest_name
    record_path = build_record_path(out / manifest_name.replace(".manifest.json", ".iso"))
    try:
        manifest, record = read_manifest(manifest_path), read_build_record(record_path)
        digest = hashlib.sha256(manifest_path.read_bytes()).hexdigest()
    except (OSError, XenliveError) as exc:
        raise BenchError(f"{manifest_path}: cannot read the build manifest or its build record: {exc}") from exc
    run = build_run_from_manifest(manifest, record, seconds, digest)
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


def run_smoke_timeline(
    iso: Path, out: Path, timeout: float, *, uefi: bool = False, usb: bool = False, tag: str = ""
) -> SmokeTimeline:
    """One smoke boot; its serial log and JUnit report are OUT/STEM[-uefi][-usb][TAG].*."""
    from xenlive.errors import XenliveError
    from xenlive.smoke import SmokeOptions, run_smoke

    lines: list[str] = []

    def echo(line: str) -> None:
        lines.append(line)
        print(line, file=sys.stderr, flush=True)

    stem = iso.name.removesuffix(".iso") + ("-uefi" if uefi else "") + ("-usb" if usb else "") + tag
    try:
        options = SmokeOptions(
            timeout, junit=out / f"{stem}.smoke.xml", serial_log=out / f"{stem}.serial.log", uefi=uefi, usb=usb
        )
        report = run_smoke(iso, options, echo=echo)
    except XenliveError as exc:
        raise BenchError(f"smoke boot of {iso}: {exc}") from exc
    verdict_text = next((line for line in reversed(lines) if line.startswith(("PASS:", "FAIL:"))), "")
    return smoke_timeline(report, verdict_text, left_out_of(iso))


def left_out_of(iso: Path) -> list[tuple[str, str]]:
    """The guests the build left out of `iso`, with why, from the manifest beside it (none without one)."""
    from xenlive.manifest import read_manifest

    manifest_path = iso.with_suffix(".manifest.json")
    if not manifest_path.exists():
        return []
    return [(entry.guest, entry.reason) for entry in read_manifest(manifest_path).left_out]


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


def manifest_name(recipe: Path) -> str:
    """NAME.manifest.json of the ISO a recipe makes."""
    from xenlive.errors import XenliveError
    from xenlive.recipe import load_recipe

    try:
        return f"{load_recipe(recipe).recipe.iso.name}.manifest.json"
    except XenliveError as exc:
        raise BenchError(str(exc)) from exc


@contextlib.contextmanager
def moved(cache_dir: Path) -> Iterator[Path]:
    """The cache directory under another name for the block (as a CI cache restores it elsewhere), then back."""
    elsewhere = cache_dir.with_name(cache_dir.name + "-moved")
    if elsewhere.exists():
        remove_cache(elsewhere)
    cache_dir.rename(elsewhere)
    try:
        yield elsewhere
    finally:
        elsewhere.rename(cache_dir)


@dataclass(frozen=True)
class Sharing:
    second: NamedRun | None = None
    other: NamedRun | None = None
    moved: BuildRun | None = None


def measure_sharing(args: argparse.Namespace, recipe: Path, out: Path, cache_dir: Path) -> Sharing:
    """After the cold build, in its cache: a second recipe with the same dom0 and guest image, another recipe
    with stages of its own, and the measured recipe again after the cache moved."""
    runs: dict[str, NamedRun] = {}
    if not args.skip_sharing:
        for key, other in (("second", args.second_recipe.resolve()), ("other", args.other_recipe.resolve())):
            if other == recipe:
                continue
            log.info("bench: %s recipe %s, into the same cache", key, _shown(other))
            runs[key] = NamedRun(_shown(other), run_build(other, out / key, cache_dir, manifest_name(other)))
    after_move = None
    if not args.skip_moved:
        with moved(cache_dir) as elsewhere:
            log.info("bench: no-change rebuild with the cache moved to %s", elsewhere)
            # Into the no-change rebuild's OUTDIR: its ISO is the one these inputs make, and is kept.
            after_move = run_build(recipe, out, elsewhere, manifest_name(recipe))
    return Sharing(runs.get("second"), runs.get("other"), after_move)


@contextlib.contextmanager
def empty_cache(prefix: str, account: Account | None = None) -> Iterator[Path]:
    """A new, empty stage cache beside xenlive's default one (same filesystem), removed after the block; with
    `account`, beside the account's, and the account's (a build uses only a cache of its own)."""
    base = default_cache_base() if account is None else account.cache
    base.mkdir(parents=True, exist_ok=True)
    cache_dir = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    if account is not None:
        give(account, base)
        give(account, cache_dir)
    try:
        yield cache_dir
    finally:
        _remove_temporary_cache(cache_dir)


def measure_sequential(args: argparse.Namespace, recipe: Path, out: Path) -> BuildRun | None:
    """The cold build again with --jobs 1, in an empty cache of its own beside the default one."""
    if args.skip_sequential:
        return None
    with empty_cache("xenlive-bench-sequential-") as cache_dir:
        log.info("bench: cold build with --jobs 1 (one stage at a time) with the empty cache %s", cache_dir)
        return run_build(recipe, out / "sequential", cache_dir, manifest_name(recipe), ["--jobs", "1"])


def measure_user(args: argparse.Namespace, recipe: Path, out: Path) -> UserBuilds | None:
    """The recipe built by an ordinary account (`--user-account`, made if missing): cold, in an empty cache of its
    own (its Debian packages too: they are kept in the cache), then again with nothing changed, into an output
    directory of its own."""
    if args.skip_user:
        return None
    try:
        account = ensure_account(args.user_account)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise BenchError(f"cannot make the account {args.user_account} for the user build: {exc}") from exc
    user_out = out / "user"
    user_out.mkdir(parents=True, exist_ok=True)
    give(account, user_out)
    manifest = manifest_name(recipe)
    with empty_cache("xenlive-bench-user-", account) as cache_dir:
        log.info("bench: cold build by the ordinary account %s with the empty cache %s", account.name, cache_dir)
        cold = run_build(recipe, user_out, cache_dir, manifest, account=account)
        log.info("bench: no-change rebuild by %s", account.name)
        no_change = run_build(recipe, user_out, cache_dir, manifest, account=account)
    return UserBuilds(account.name, cold, no_change)


def build_bookworm_cold(out: Path) -> Built:
    """The demo on bookworm, cold: in an empty cache of its own, as the measured recipe's cold build."""
    with empty_cache("xenlive-bench-bookworm-") as cache_dir:
        log.info("bench: cold build of %s with the empty cache %s", _shown(BOOKWORM_RECIPE), cache_dir)
        return build_other(BOOKWORM_RECIPE, out / "bookworm", cache_dir)


def boot_bios(iso: Path, out: Path, args: argparse.Namespace) -> tuple[SmokeTimeline, ...]:
    """`--boots` smoke boots of `iso` as a BIOS CD, stopping at the first that fails; show median_boot() of them.

    On this kind of machine one boot differs from the next by more than most changes move the figures: each
    boot figure is the median of the boots.
    """
    boots: list[SmokeTimeline] = []
    for n in range(1, args.boots + 1):
        log.info("bench: smoke boot %d of %d of %s", n, args.boots, iso)
        boots.append(run_smoke_timeline(iso, out, args.smoke_timeout, tag="" if n == 1 else f"-boot{n}"))
        if not boots[-1].passed:
            break
    return tuple(boots)


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
    # The demo is set beside bookworm and beside six guests; another recipe is measured on its own.
    want_suites = recipe == DEFAULT_RECIPE
    want_six = not (args.skip_six_guests or args.skip_smoke)

    with contextlib.ExitStack() as cleanup:
        cache_dir: Path | None = args.cache_dir.resolve() if args.cache_dir else None
        cold: BuildRun | None = None
        if args.skip_cold:
            log.info("bench: warm-up build (not measured), so that the next one has nothing to do")
            run_build(recipe, out, cache_dir, manifest)
        else:
            if cache_dir is None:
                cache_dir = cleanup.enter_context(empty_cache("xenlive-bench-"))
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

        # Sharing makes sense only after a cold build: in a warm cache the other recipes may be cached already.
        shared = measure_sharing(args, recipe, out, cache_dir) if cold is not None and cache_dir else Sharing()
        # The other profile is built now (sharing the cache), so that nothing builds while the ISOs boot.
        other = None if args.skip_profile or args.skip_smoke else (args.profile_recipe or PROFILE_RECIPES.get(recipe))
        other_built = build_other(other.resolve(), out / "profile", cache_dir) if other is not None else None
        # Six guests of the demo's dom0 and guest image: in this cache it builds only its own stages.
        six_built = build_other(SIX_GUESTS_RECIPE, out / "six-guests", cache_dir) if want_suites and want_six else None

    sequential = measure_sequential(args, recipe, out) if cold is not None else None
    # Set beside root's cold build, of the demo only (a user cannot build every recipe: diskimage-builder's images
    # need root).
    user = measure_user(args, recipe, out) if cold is not None and want_suites else None
    bookworm_built = build_bookworm_cold(out) if want_suites and not args.skip_bookworm else None

    smoke = None
    boots: tuple[SmokeTimeline, ...] = ()
    profile = None
    media: list[MediumBoot] = []
    iso = out / f"{name}.iso"
    if not args.skip_smoke:
        boots = boot_bios(iso, out, args)
        smoke = median_boot(boots)
        if other_built is not None:
            log.info("bench: smoke boot of %s (dom0.init %s), to compare", other_built.iso, other_built.init)
            profile = ProfileBoot(
                other_built.recipe,
                other_built.init,
                run_smoke_timeline(other_built.iso, out / "profile", args.smoke_timeout),
            )
        if not args.skip_media:
            for medium, uefi, usb in ((UEFI_CD, True, False), ("USB stick (BIOS)", False, True)):
                log.info("bench: smoke boot of %s as a %s", iso, medium)
                media.append(MediumBoot(medium, run_smoke_timeline(iso, out, args.smoke_timeout, uefi=uefi, usb=usb)))
    # After the demo's boots (its UEFI boot is set against their median), each booted as often as the demo.
    bookworm = booted(bookworm_built, out / "bookworm", args)
    six_guests = booted(six_built, out / "six-guests", args)

    return BenchResults(
        date=dt.datetime.now(dt.UTC),
        recipe=_shown(recipe),
        machine=machine,
        cold=cold,
        no_change=no_change,
        one_file=one_file,
        edited_file=edited,
        smoke=smoke,
        second=shared.second,
        other=shared.other,
        moved=shared.moved,
        sequential=sequential,
        init=loaded.recipe.dom0.init,
        profile=profile,
        media=tuple(media),
        boots=boots if len(boots) > 1 else (),
        bookworm=bookworm,
        six_guests=six_guests,
        user=user,
    )


@dataclass(frozen=True)
class Built:
    """Another recipe built to boot and compare with later in the run."""

    recipe: str  # as shown
    init: str  # its dom0.init
    iso: Path
    run: BuildRun


def build_other(recipe: Path, out: Path, cache_dir: Path | None) -> Built:
    """Build another recipe to compare with (with the run's cache, only what differs is built)."""
    from xenlive.errors import XenliveError
    from xenlive.recipe import load_recipe

    try:
        loaded = load_recipe(recipe)
    except XenliveError as exc:
        raise BenchError(str(exc)) from exc
    name = loaded.recipe.iso.name
    log.info("bench: build of %s (dom0.init %s), to compare", _shown(recipe), loaded.recipe.dom0.init)
    out.mkdir(parents=True, exist_ok=True)
    run = run_build(recipe, out, cache_dir, f"{name}.manifest.json")
    return Built(_shown(recipe), loaded.recipe.dom0.init, out / f"{name}.iso", run)


def booted(built: Built | None, out: Path, args: argparse.Namespace) -> RecipeBoots | None:
    """Another recipe's build with its boots as a BIOS CD (none with --skip-smoke)."""
    if built is None:
        return None
    return RecipeBoots(built.recipe, built.run, () if args.skip_smoke else boot_bios(built.iso, out, args))


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
    parser.add_argument(
        "--second-recipe",
        type=Path,
        default=SECOND_RECIPE,
        help="a recipe with the same dom0 and guest image, built after the cold build into its cache: it must build "
        "only its own stages (default: %(default)s)",
    )
    parser.add_argument(
        "--other-recipe",
        type=Path,
        default=OTHER_RECIPE,
        help="a recipe with stages of its own, built after those: it must download only the Debian packages the "
        "cache lacks (default: %(default)s)",
    )
    parser.add_argument("--skip-sharing", action="store_true", help="do not build the second and the other recipe")
    parser.add_argument("--skip-moved", action="store_true", help="do not rebuild with the cache moved elsewhere")
    parser.add_argument(
        "--skip-sequential", action="store_true", help="do not measure a second cold build with --jobs 1"
    )
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
    parser.add_argument(
        "--skip-bookworm",
        action="store_true",
        help=f"with the demo: do not cold-build and boot the demo on bookworm ({_shown(BOOKWORM_RECIPE)}) beside it",
    )
    parser.add_argument(
        "--skip-six-guests",
        action="store_true",
        help=f"with the demo: do not build and boot the six-guest recipe ({_shown(SIX_GUESTS_RECIPE)}) beside it",
    )
    parser.add_argument(
        "--skip-user",
        action="store_true",
        help="with the demo: do not build it as an ordinary account beside root's cold build",
    )
    parser.add_argument(
        "--user-account",
        default=DEFAULT_ACCOUNT,
        metavar="NAME",
        help="the ordinary account that builds the demo (made if missing, with subordinate ids; it builds in an "
        "empty cache of its own, removed afterwards) (default: %(default)s)",
    )
    parser.add_argument(
        "--boots",
        type=_positive_int,
        default=3,
        help="boots of the ISO as a BIOS CD, and of the bookworm demo and the six-guest recipe; the boot figures "
        "are their medians (default: %(default)s)",
    )
    parser.add_argument("--smoke-timeout", type=float, default=900, help="seconds (default: %(default)s)")
    return parser.parse_args(argv)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


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
