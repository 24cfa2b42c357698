"""The benchmark's report: the figures against their targets, as the Markdown tables of BENCHMARKS.md, and
the markers that delimit each recipe's section of it. Pure: nothing here runs anything."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmodel import (
    DEFAULT_RECIPE,
    UEFI_CD,
    BenchError,
    BenchResults,
    BuildRun,
    GuestBuild,
    MediumBoot,
    NamedRun,
    ProfileBoot,
    RecipeBoots,
    SmokeTimeline,
    UserBuilds,
    boots_median,
    median_boot,
    median_of,
)

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
TIMES = "\N{MULTIPLICATION SIGN}"  # the unit of a ratio

# Targets, in the unit each figure is shown in (seconds, MiB).
COLD_BUILD_TARGET = 90.0
NO_CHANGE_TARGET = 2.0
ONE_FILE_TARGET = 5.0
FIRST_GUEST_TARGET = 45.0
ALL_GUESTS_TARGET = 75.0
ALL_NETWORKS_TARGET = 90.0
ISO_TARGET_MIB = 300 * MB / MIB  # the target is 300 MB (decimal), i.e. 286.1 MiB

NO_SMOKE = "skipped (--skip-smoke)"
SKIPPED_SHARING = "skipped (--skip-cold or --skip-sharing)"
# What a second recipe with the same dom0 and guest image may build: its own stages, nothing they share.
OWN_STAGES = ("dom0-config", "iso")

# The peer, Debian live-build (1:20230502), measured on the same kind of machine on the same job: dom0 only
# (no guests, no Xen boot entry), bookworm, iso-hybrid, grub-efi + grub-pc, zstd squashfs (../shared/FACTS.md).
LIVE_BUILD = {
    "cold": "225 s (300 s in a rerun), dom0 only",
    "no-change": "176 s (warm build)",
    "one-file": "184 s (clean, config, build; a plain `lb build` skips the change)",
    "iso": "336 MiB, no guests",
}


@dataclass(frozen=True)
class Figure:
    """One row of the summary table. `value` None with `ran` True: measured, but never reached (e.g. a guest)."""

    label: str
    value: float | None
    unit: str
    target: float | None  # None: shown for information, or judged by `met`
    target_text: str
    ran: bool
    note: str = ""
    met: bool | None = None  # for a target that is no number (a second recipe builds only its own stages)
    digits: int = 1  # decimals shown


def verdict(figure: Figure) -> str:
    """met / missed against the target; a figure that was not reached misses it; skipped ones were not run."""
    if figure.target is None and figure.met is None:
        return ""
    if not figure.ran:
        return "not run"
    if figure.met is not None:
        return "met" if figure.met else "missed"
    assert figure.target is not None
    if figure.value is None:
        return "missed"
    return "met" if figure.value <= figure.target else "missed"


def format_value(figure: Figure) -> str:
    if not figure.ran:
        return "not run"
    if figure.value is None:
        return "not reached"
    return with_unit(figure.value, figure.unit, figure.digits)


def with_unit(value: float, unit: str, digits: int = 1) -> str:
    """A value as shown: 29.7 s, 231.1 MiB; a ratio with its sign right after the number."""
    return f"{value:.{digits}f}{'' if unit == TIMES else ' '}{unit}"


def _sequential_note(cold: BuildRun | None, sequential: BuildRun | None) -> str:
    if sequential is None:
        return "skipped (--skip-cold or --skip-sequential)"
    if cold is None:
        return "dom0, guest images and GRUB's boot images one after another"
    saved = sequential.wall_seconds - cold.wall_seconds
    change = f"{saved:.1f} s less" if saved >= 0 else f"{-saved:.1f} s more"
    return f"at the same time (the cold build above): {cold.wall_seconds:.1f} s, {change}"


def _second_figure(second: NamedRun | None) -> Figure:
    if second is None:
        return Figure("Second recipe, same dom0 and guest image", None, "s", None, "", ran=False, note=SKIPPED_SHARING)
    shared = [s for s in second.run.rebuilt if s not in OWN_STAGES]
    return Figure(
        f"Second recipe ({second.recipe}), same dom0 and guest image",
        second.run.wall_seconds,
        "s",
        None,
        "builds only its own stages",
        ran=True,
        note=rebuilt_note(second.run) + (f"; rebuilt what it shares: {', '.join(shared)}" if shared else ""),
        met=not shared,
    )


def _other_figure(other: NamedRun | None) -> Figure:
    if other is None:
        return Figure("Another recipe, its own stages cold", None, "MiB", None, "", ran=False, note=SKIPPED_SHARING)
    run, mib = other.run, 2**20
    return Figure(
        f"Another recipe ({other.recipe}), its own stages cold: Debian packages downloaded",
        run.apt_downloaded_bytes / mib,
        "MiB",
        None,
        "only what it lacks",
        ran=True,
        note=f"{run.apt_from_cache_bytes / mib:.0f} MiB from the package cache; {run.wall_seconds:.1f} s; "
        + rebuilt_note(run),
        met=run.apt_from_cache_bytes > 0,
    )


def _moved_figure(moved: BuildRun | None) -> Figure:
    if moved is None:
        return Figure(
            "No-change rebuild after moving the cache",
            None,
            "s",
            None,
            "",
            ran=False,
            note="skipped (--skip-cold or --skip-moved)",
        )
    return Figure(
        "No-change rebuild after moving the cache",
        moved.wall_seconds,
        "s",
        None,
        "every stage cached",
        ran=True,
        note=rebuilt_note(moved),
        met=not moved.rebuilt,
    )


def figures(results: BenchResults) -> list[Figure]:
    """The summary table's rows, each measured figure against its target."""
    cold, no_change, one_file, smoke = results.cold, results.no_change, results.one_file, results.smoke
    rows = [
        Figure(
            "Cold build (empty cache)",
            cold.wall_seconds if cold else None,
            "s",
            COLD_BUILD_TARGET,
            "≤ 90 s",
            ran=cold is not None,
            note=f"build_iso {cold.build_seconds:.1f} s" if cold else "skipped (--skip-cold)",
        ),
        Figure(
            "Cold build, one stage at a time (--jobs 1)",
            results.sequential.wall_seconds if results.sequential else None,
            "s",
            None,
            "",
            ran=results.sequential is not None,
            note=_sequential_note(cold, results.sequential),
        ),
        Figure(
            "No-change rebuild",
            no_change.wall_seconds,
            "s",
            NO_CHANGE_TARGET,
            "≤ 2 s",
            ran=True,
            note=rebuilt_note(no_change),
        ),
        Figure(
            "Rebuild after editing one overlay file",
            one_file.wall_seconds,
            "s",
            ONE_FILE_TARGET,
            "≤ 5 s",
            ran=True,
            note=f"{results.edited_file}; {rebuilt_note(one_file)}",
        ),
        _second_figure(results.second),
        _other_figure(results.other),
        _moved_figure(results.moved),
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
    boots = results.bios_boots
    for step, label in (("xen", "Xen booted"), ("dom0", "dom0 up"), ("toolstack", "Toolstack up")):
        values = [boot.step_at(step) for boot in boots]
        note = _boots_note(values) if smoke else NO_SMOKE
        rows.append(Figure(label, median_of(values), "s", None, "", ran=smoke is not None, note=note))
    first = [boot.first_guest_ready for boot in boots]
    every = [boot.all_guests_ready for boot in boots]
    networks = [boot.all_networks_checked for boot in boots]
    first_at, every_at, networks_at = median_of(first), median_of(every), median_of(networks)
    rows += [
        Figure(
            "First guest ready",
            first_at,
            "s",
            FIRST_GUEST_TARGET,
            "≤ 45 s",
            ran=smoke is not None,
            note=_joined(_boots_note(first), _guests_note(smoke, first_at, "")),
        ),
        Figure(
            "All default guests ready",
            every_at,
            "s",
            ALL_GUESTS_TARGET,
            "≤ 75 s",
            ran=smoke is not None,
            note=_joined(_boots_note(every), _guests_note(smoke, every_at, _on_iso_note(smoke) if smoke else "")),
        ),
        Figure(
            "Every network verdict",
            networks_at,
            "s",
            ALL_NETWORKS_TARGET,
            "≤ 90 s",
            ran=smoke is not None,
            note=_joined(_boots_note(networks), _networks_note(smoke, networks_at)),
        ),
    ]
    return rows


def _boots_note(values: Sequence[float | None]) -> str:
    """Each boot's value of a figure, when there was more than one boot."""
    if len(values) < 2:
        return ""
    shown = ", ".join("-" if v is None else f"{v:.1f}" for v in values)
    return f"median of {len(values)} boots: {shown}"


def _joined(*notes: str) -> str:
    return "; ".join(note for note in notes if note)


def _on_iso_note(smoke: SmokeTimeline) -> str:
    """How many guests an "all guests" figure counts, and which the build left out of the ISO."""
    note = f"{len(smoke.on_iso)} guest(s) on the ISO"
    if smoke.left_out:
        note += "; left out of the ISO by the build: " + ", ".join(f"{name} ({why})" for name, why in smoke.left_out)
    return note


def _networks_note(smoke: SmokeTimeline | None, value: float | None) -> str:
    if smoke is None:
        return NO_SMOKE
    if value is not None:
        return _on_iso_note(smoke)
    failed = [g for g in smoke.on_iso if g.network not in ("ok", "none")]
    if failed:
        return "not ok: " + ", ".join(f"{g.name} {g.network}: {g.network_detail}" for g in failed)
    return _guests_note(smoke, None, "")


def rebuilt_note(run: BuildRun) -> str:
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


def peer_table(results: BenchResults) -> list[str]:
    """xenlive's figures of this run beside live-build's on the same job."""

    def seconds(run: BuildRun | None) -> str:
        return "not run" if run is None else f"{run.wall_seconds:.1f} s"

    rows = [
        ["cold build", LIVE_BUILD["cold"], seconds(results.cold) + " (dom0 and its guest images)"],
        ["rebuild, nothing changed", LIVE_BUILD["no-change"], seconds(results.no_change)],
        ["rebuild after changing one file", LIVE_BUILD["one-file"], seconds(results.one_file)],
        ["ISO", LIVE_BUILD["iso"], f"{results.no_change.iso_bytes / MIB:.1f} MiB with the recipe's guest images"],
    ]
    return markdown_table(["", "live-build", "xenlive (this run)"], rows)


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


# The boot milestones compared across profiles and media: label, and how to read it off a timeline.
MILESTONES: tuple[tuple[str, Callable[[SmokeTimeline], float | None]], ...] = (
    ("Xen booted", lambda s: s.step_at("xen")),
    ("dom0 up", lambda s: s.step_at("dom0")),
    ("Toolstack up", lambda s: s.step_at("toolstack")),
    ("First guest ready", lambda s: s.first_guest_ready),
    ("All default guests ready", lambda s: s.all_guests_ready),
    ("Every network verdict", lambda s: s.all_networks_checked),
)


def _at(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def profile_table(init: str, smoke: SmokeTimeline, profile: ProfileBoot) -> list[str]:
    """The recipe's boot beside the other profile's, milestone by milestone, with the ratio other/this."""
    rows = []
    for label, read in MILESTONES:
        mine, theirs = read(smoke), read(profile.smoke)
        ratio = f"{theirs / mine:.2f}" if mine and theirs else "-"
        rows.append([label, _at(mine), _at(theirs), ratio])
    header = ["Seconds from power-on", f"{init} (this recipe)", f"{profile.init} (`{profile.recipe}`)", "ratio"]
    return markdown_table(header, rows)


def media_table(smoke: SmokeTimeline, media: Sequence[MediumBoot]) -> list[str]:
    """The same ISO from each medium: when each milestone was reached, and whether the boot passed."""
    boots = [("BIOS CD", smoke), *((m.medium, m.smoke) for m in media)]
    rows = [[label, *(_at(read(s)) for _, s in boots)] for label, read in MILESTONES]
    rows.append(["Smoke verdict", *("PASS" if s.passed else "FAIL" for _, s in boots)])
    return markdown_table(["Seconds from power-on", *(name for name, _ in boots)], rows)


# --- a build by an ordinary user beside root's ------------------------------------------------------------------

USER_COLD_RATIO_TARGET = 1.3
DIGEST_SHOWN = 12  # hex digits of a sha256 shown in a cell


def _ratio(user: BuildRun, root: BuildRun | None) -> float | None:
    """The user's wall time over root's; None without root's."""
    return user.wall_seconds / root.wall_seconds if root is not None and root.wall_seconds > 0 else None


def _seconds(run: BuildRun | None) -> str:
    return "not run" if run is None else f"{run.wall_seconds:.1f} s"


def _digest_row(label: str, root: str | None, user: str) -> list[str]:
    """A row of the user table for a digest: the first digits of both, and whether they are equal (`root` None:
    root's cold build was not run)."""
    same = root == user if root and user else None
    result = "not compared" if same is None else "yes" if same else "no"
    note = "" if same is not None else "no cold build by root (--skip-cold)" if root is None else "a digest is missing"
    return [label, (root or "-")[:DIGEST_SHOWN], (user or "-")[:DIGEST_SHOWN], "", "equal", result, note]


def user_table(root_cold: BuildRun | None, root_no_change: BuildRun, user: UserBuilds) -> list[str]:
    """The recipe built by root and by an ordinary account in the same run: the user's cold build against root's
    (as a ratio), the user's no-change rebuild (root's beside it), and whether both made the same ISO and the
    same manifest as root's cold build."""
    cold = Figure(
        "Cold build (empty cache)",
        _ratio(user.cold, root_cold),
        TIMES,
        USER_COLD_RATIO_TARGET,
        f"≤ {USER_COLD_RATIO_TARGET}{TIMES}",
        ran=root_cold is not None,
        note=f"build_iso: root {root_cold.build_seconds:.1f} s, user {user.cold.build_seconds:.1f} s"
        if root_cold
        else "no cold build by root (--skip-cold)",
        digits=2,
    )
    no_change = Figure(
        "No-change rebuild",
        user.no_change.wall_seconds,
        "s",
        NO_CHANGE_TARGET,
        "≤ 2 s",
        ran=True,
        note=f"user's: {rebuilt_note(user.no_change)}",
    )
    no_change_ratio = _ratio(user.no_change, root_no_change)
    cells = [
        [cold.label, _seconds(root_cold), _seconds(user.cold), format_value(cold), cold.target_text],
        [
            no_change.label,
            _seconds(root_no_change),
            _seconds(user.no_change),
            "-" if no_change_ratio is None else with_unit(no_change_ratio, TIMES, 2),
            no_change.target_text,
        ],
    ]
    cells = [[*row, verdict(figure), figure.note] for row, figure in zip(cells, (cold, no_change), strict=True)]
    root_iso = root_cold.iso_sha256 if root_cold else None
    root_manifest = root_cold.manifest_sha256 if root_cold else None
    cells.append(_digest_row("ISO sha256 equal", root_iso, user.cold.iso_sha256))
    cells.append(_digest_row("Manifest equal (byte for byte)", root_manifest, user.cold.manifest_sha256))
    header = ["Figure", "Root", f"User ({user.account})", "User / root", "Target", "Result", "Notes"]
    return markdown_table(header, cells)


def user_section(results: BenchResults) -> list[str]:
    """Root against user build; nothing when no user build was measured."""
    user = results.user
    if user is None:
        return []
    return [
        "",
        "### Root against user build",
        "",
        f"The recipe built by root and, in the same run, by the ordinary account {user.account} (`xenlive build` "
        "in user namespaces of its own): each cold in an empty cache of its own, then again with nothing changed. "
        "The same inputs must give the same ISO and the same manifest, whoever builds: the last two rows compare "
        f"the sha256 of the user's cold build with root's (the first {DIGEST_SHOWN} hex digits shown). Times: wall "
        "time of `build.py build`.",
        "",
        *user_table(results.cold, results.no_change, user),
    ]


# --- the default suite against the previous one ----------------------------------------------------------------

# The demo on bookworm as measured on 2026-12-01 (bench run of 10:42, medians of three BIOS-CD boots), as (low,
# high): the cold build varied from run to run. The bookworm demo of a run is set against these: within
# REFERENCE_TOLERANCE either way, this machine measures as it did then.
BOOKWORM_REFERENCE_DATE = "12-01"
REFERENCE_TOLERANCE = 0.10
UEFI_RATIO_TARGET = 1.2
SKIPPED_BOOKWORM = "skipped (--skip-bookworm)"
SKIPPED_SIX = "skipped (--skip-six-guests or --skip-smoke)"


@dataclass(frozen=True)
class SuiteRow:
    """One figure of the default suite's demo (against its target) beside the bookworm demo of the same run and
    beside bookworm's figure of 12-01."""

    figure: Figure  # the default suite's
    bookworm: Figure  # the bookworm demo's in this run, no target; `ran` False: its note says why there is none
    reference: tuple[float, float] | None  # bookworm on 12-01, low and high; None: not measured then


def _boot_figure(
    label: str,
    boots: Sequence[SmokeTimeline],
    read: Callable[[SmokeTimeline], float | None],
    target: float | None,
    not_run: str,
) -> Figure:
    """A boot figure as the median of `boots`, each boot's value in its note; `not_run` when there was no boot."""
    values = [read(boot) for boot in boots]
    shown = f"≤ {target:g} s" if target is not None else ""
    return Figure(label, median_of(values), "s", target, shown, ran=bool(boots), note=_boots_note(values) or not_run)


def _not_measured(label: str, why: str) -> Figure:
    return Figure(label, None, "", None, "", ran=False, note=why)


def _uefi_ratio(results: BenchResults) -> Figure:
    """The UEFI CD's first guest ready over the median of the BIOS CD boots of the same run."""
    label, target = "UEFI CD: first guest ready, as a ratio to the BIOS CD", f"≤ {UEFI_RATIO_TARGET}{TIMES}"
    uefi = next((m.smoke for m in results.media if m.medium == UEFI_CD), None)
    if uefi is None:
        note = "skipped (--skip-media or --skip-smoke)"
        return Figure(label, None, TIMES, UEFI_RATIO_TARGET, target, ran=False, note=note)
    bios = boots_median(results.bios_boots, lambda s: s.first_guest_ready)
    at = uefi.first_guest_ready
    ratio = at / bios if at is not None and bios else None
    note = f"UEFI CD {_at(at)} s / BIOS CD {_at(bios)} s (median)"
    return Figure(label, ratio, TIMES, UEFI_RATIO_TARGET, target, ran=True, note=note, digits=2)


def suite_rows(results: BenchResults) -> list[SuiteRow]:
    """The default suite's targets, its demo against them, the bookworm demo of the same run beside it."""
    bookworm, six = results.bookworm, results.six_guests
    mine = results.bios_boots
    theirs = bookworm.boots if bookworm is not None else ()
    no_bookworm_boot = SKIPPED_BOOKWORM if bookworm is None else NO_SMOKE
    rows = []
    for label, read, target, reference in (
        ("First guest ready after power-on", lambda s: s.first_guest_ready, 35.0, 29.7),
        ("Every guest ready", lambda s: s.all_guests_ready, 45.0, 35.7),
        ("Every network verdict", lambda s: s.all_networks_checked, 55.0, 40.9),
    ):
        rows.append(
            SuiteRow(
                _boot_figure(label, mine, read, target, NO_SMOKE),
                _boot_figure(label, theirs, read, None, no_bookworm_boot),
                (reference, reference),
            )
        )
    six_label = f"Six Debian guests{f' (`{six.recipe}`)' if six else ''}: every guest ready"
    six_boots, no_six_boot = (six.boots, NO_SMOKE) if six else ((), SKIPPED_SIX)
    six_figure = _boot_figure(six_label, six_boots, lambda s: s.all_guests_ready, 60.0, no_six_boot)
    rows.append(SuiteRow(six_figure, _not_measured(six_label, "not measured (default suite only)"), None))
    rows.append(SuiteRow(_uefi_ratio(results), _not_measured("", "not measured (BIOS CD only)"), (1.6, 1.6)))
    cold, iso_mib = results.cold, results.no_change.iso_bytes / MIB
    rows += [
        SuiteRow(
            Figure(
                "Cold build of the demo, empty cache",
                cold.wall_seconds if cold else None,
                "s",
                60.0,
                "≤ 60 s",
                ran=cold is not None,
                note="" if cold else "skipped (--skip-cold)",
            ),
            Figure("", bookworm.run.wall_seconds, "s", None, "", ran=True)
            if bookworm
            else _not_measured("", SKIPPED_BOOKWORM),
            (47.1, 73.0),
        ),
        SuiteRow(
            Figure("ISO size", iso_mib, "MiB", 250.0, "≤ 250 MiB", ran=True),
            Figure("", bookworm.run.iso_bytes / MIB, "MiB", None, "", ran=True)
            if bookworm
            else _not_measured("", SKIPPED_BOOKWORM),
            (231.1, 231.1),
        ),
    ]
    return rows


def against_reference(value: float | None, reference: tuple[float, float]) -> tuple[float | None, bool]:
    """How far `value` lies from a reference figure (or range), as a fraction (0 inside the range), and whether
    that is within REFERENCE_TOLERANCE either way; a figure not reached is not within it."""
    if value is None:
        return None, False
    low, high = reference
    change = value / low - 1 if value < low else value / high - 1 if value > high else 0.0
    return change, abs(change) <= REFERENCE_TOLERANCE + 1e-9


def _reference_cells(row: SuiteRow) -> tuple[str, str]:
    """Bookworm's 12-01 figure, and this run's bookworm against it."""
    if row.reference is None:
        return "not measured", "-"
    low, high = row.reference
    unit, digits = row.figure.unit, row.figure.digits
    shown = with_unit(low, unit, digits) if low == high else f"{low:.{digits}f}-{with_unit(high, unit, digits)}"
    if not row.bookworm.ran:
        return shown, "-"
    change, within = against_reference(row.bookworm.value, row.reference)
    if change is None:
        return shown, "not reached: not within 10%"
    where = "in the range" if change == 0 and low != high else f"{round(change, 3) + 0.0:+.1%}"  # never -0.0%
    return shown, f"{where}: {'within' if within else 'not within'} {REFERENCE_TOLERANCE:.0%}"


def suite_table(rows: Sequence[SuiteRow]) -> list[str]:
    header = [
        "Figure",
        "trixie (this run)",
        "Target",
        "Result",
        "bookworm (this run)",
        f"bookworm ({BOOKWORM_REFERENCE_DATE})",
        f"bookworm against {BOOKWORM_REFERENCE_DATE}",
        "Notes",
    ]
    cells = []
    for row in rows:
        mine, theirs = row.figure, row.bookworm
        # Bookworm's cell: its value, or without one the note that says why; a value's note goes to the notes.
        theirs_cell, theirs_note = (format_value(theirs), theirs.note) if theirs.ran else (theirs.note, "")
        notes = _joined(mine.note, f"bookworm {theirs_note}" if theirs_note else "")
        mine_cells = [mine.label, format_value(mine), mine.target_text, verdict(mine)]
        cells.append([*mine_cells, theirs_cell, *_reference_cells(row), notes])
    return markdown_table(header, cells)


def reference_verdict(rows: Sequence[SuiteRow]) -> str:
    """Whether the bookworm demo of this run stayed within 10% of its 12-01 figures, in words."""
    compared = [row for row in rows if row.reference is not None and row.bookworm.ran]
    if not compared:
        return f"The bookworm demo was not measured in this run: nothing to set against {BOOKWORM_REFERENCE_DATE}."
    outside = []
    for row in compared:
        assert row.reference is not None
        change, within = against_reference(row.bookworm.value, row.reference)
        if not within:
            outside.append(f"{row.figure.label} ({'not reached' if change is None else f'{change:+.1%}'})")
    if not outside:
        return (
            f"The bookworm demo of this run is within {REFERENCE_TOLERANCE:.0%} of its {BOOKWORM_REFERENCE_DATE} "
            f"figures on all {len(compared)} measured: this machine measures as it did then."
        )
    return (
        f"The bookworm demo of this run is not within {REFERENCE_TOLERANCE:.0%} of its {BOOKWORM_REFERENCE_DATE} "
        f"figures on {len(outside)} of {len(compared)}: {', '.join(outside)}; set trixie against the bookworm "
        "column of this run, not against those figures."
    )


# --- how the boot grows with the number of guests ---------------------------------------------------------------


def ready_at(name: str) -> Callable[[SmokeTimeline], float | None]:
    """Reads when guest `name` was ready off a boot (None: it never was)."""

    def read(smoke: SmokeTimeline) -> float | None:
        guest = smoke.guest(name)
        return guest.at if guest is not None and guest.state == "ready" else None

    return read


@dataclass(frozen=True)
class Growth:
    """One recipe's boots: how many guests, when the first and the last was ready (medians)."""

    recipe: str
    guests: int  # on the ISO
    first: float | None
    every: float | None
    networks: float | None

    @property
    def per_guest(self) -> float | None:
        """Seconds from the first guest ready to the last, per guest after the first."""
        if self.first is None or self.every is None or self.guests < 2:
            return None
        return (self.every - self.first) / (self.guests - 1)


def growth(recipe: str, boots: Sequence[SmokeTimeline]) -> Growth | None:
    if not boots:
        return None
    shown = median_boot(boots)
    return Growth(
        recipe,
        len(shown.on_iso),
        boots_median(boots, lambda s: s.first_guest_ready),
        boots_median(boots, lambda s: s.all_guests_ready),
        boots_median(boots, lambda s: s.all_networks_checked),
    )


def growth_table(rows: Sequence[Growth]) -> list[str]:
    header = [
        "Recipe",
        "Guests",
        "First guest ready (s)",
        "Every guest ready (s)",
        "Every network verdict (s)",
        "Per guest after the first (s)",
    ]
    cells = [
        [f"`{g.recipe}`", str(g.guests), _at(g.first), _at(g.every), _at(g.networks), _at(g.per_guest)] for g in rows
    ]
    return markdown_table(header, cells)


def per_extra_guest(fewer: Growth, more: Growth) -> float | None:
    """Seconds that each guest more adds to every guest ready, from one recipe to another with more guests."""
    if fewer.every is None or more.every is None or more.guests <= fewer.guests:
        return None
    return (more.every - fewer.every) / (more.guests - fewer.guests)


def guest_ready_table(recipe: RecipeBoots) -> list[str]:
    """Each guest of a recipe by when it was ready (median of the boots), with the time since the one before."""
    ready = [(g.name, g.type, boots_median(recipe.boots, ready_at(g.name))) for g in recipe.run.guests]
    ready.sort(key=lambda row: (row[2] is None, row[2] or 0.0))
    cells: list[list[str]] = []
    before: float | None = None
    for name, kind, at in ready:
        after = at - before if at is not None and before is not None else None
        cells.append([name, kind, _at(at), _at(after)])
        before = at if at is not None else before
    return markdown_table(["Guest", "Type", "Ready at (s)", "After the guest before (s)"], cells)


def suite_section(results: BenchResults) -> list[str]:
    """The default suite's demo against the bookworm demo and its targets, and how the boot grows with the number
    of guests; nothing when neither was measured."""
    bookworm, six = results.bookworm, results.six_guests
    if bookworm is None and six is None:
        return []
    rows = suite_rows(results)
    lines = [
        "",
        "### Trixie against bookworm",
        "",
        "The demo (trixie) and the demo on bookworm "
        + (f"(`{bookworm.recipe}`, cold-built in an empty cache of its own)" if bookworm else "(not measured)")
        + " measured in this run, one after the other; boot figures are medians of the BIOS CD boots. "
        f"Result: the trixie figure against its target. Bookworm ({BOOKWORM_REFERENCE_DATE}): the figures of the "
        f"bench run of 2026-12-01, when bookworm was the default.",
        "",
        *suite_table(rows),
        "",
        reference_verdict(rows),
    ]
    for name, other in (("bookworm", bookworm), ("six guests", six)):
        if other is not None and other.smoke is not None:
            lines += ["", f"{name}: {other.smoke.verdict}"]
    demo = growth(results.recipe, results.bios_boots)
    many = growth(six.recipe, six.boots) if six is not None else None
    if six is None or many is None:
        return lines
    lines += [
        "",
        "### Boot time by number of guests",
        "",
        "Medians of the BIOS CD boots of each recipe in this run. Per guest after the first: from the first guest "
        "ready to the last, divided by the guests after the first.",
        "",
        *growth_table([g for g in (demo, many) if g is not None]),
    ]
    extra = per_extra_guest(demo, many) if demo is not None else None
    if demo is not None and extra is not None:
        lines += [
            "",
            f"From {demo.guests} guests to {many.guests}, every guest ready moved from {_at(demo.every)} s to "
            f"{_at(many.every)} s: {extra:.1f} s per guest more.",
        ]
    lines += ["", f"Each guest of `{six.recipe}`, by when it was ready:", "", *guest_ready_table(six)]
    return lines


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
        "Times are wall-clock seconds; boot times count from QEMU's start."
        + (
            f" Boot figures are the medians of {len(results.boots)} boots of the ISO as a BIOS CD; the tables below"
            " show the median boot by its last network verdict."
            if results.boots
            else ""
        ),
        "",
        "### Against the peer (Debian live-build, same job, same kind of machine)",
        "",
        *peer_table(results),
    ]
    if results.cold is not None:
        lines += ["", "### Cold build, per stage", "", *stage_table(results.cold)]
    lines += user_section(results)
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
    if results.smoke is not None and results.profile is not None:
        lines += [
            "",
            f"### Boot profiles: dom0.init {results.init} against {results.profile.init}",
            "",
            f"Both booted one after the other in this run; ratio: {results.profile.init} / {results.init}.",
            "",
            *profile_table(results.init, results.smoke, results.profile),
            "",
            f"{results.profile.init}: {results.profile.smoke.verdict}",
        ]
    if results.smoke is not None and results.media:
        lines += [
            "",
            "### Boot media",
            "",
            "The same ISO as a CD with BIOS (the smoke boot above), and from the other media, one after the other.",
            "",
            *media_table(results.smoke, results.media),
        ]
    lines += suite_section(results)
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
