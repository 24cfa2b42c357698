"""bench/bench.py, its pure parts: the BENCHMARKS.md markers, met/missed, the tables, reading results back.

The script is not a module of the package, so it is loaded from its path.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import pytest

from xenlive.manifest import BuildRecord, parse_manifest
from xenlive.smoke import GuestStatus, Plan, SmokeReport, SmokeState, StepReached

BENCH_PY = Path(__file__).resolve().parent.parent.parent / "bench" / "bench.py"


def _load() -> ModuleType:
    if str(BENCH_PY.parent) not in sys.path:
        sys.path.insert(0, str(BENCH_PY.parent))  # its modules beside it, as when it runs as a script
    spec = importlib.util.spec_from_file_location("xenlive_bench", BENCH_PY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


bench = _load()
BEGIN, END = bench.BEGIN, bench.END


def stage(name: str, cached: bool, seconds: float = 1.0, reason: str = "") -> Any:
    return bench.StageTiming(name, cached, seconds, reason)


def build(wall: float, *stages: Any, iso_bytes: int = 200 * 2**20) -> Any:
    return bench.BuildRun(wall, wall - 0.5, stages, iso_bytes)


ALL_CACHED = (stage("dom0-rootfs", True), stage("guest-debian", True), stage("dom0-config", True), stage("iso", True))


def timeline(*guests: Any, passed: bool = True) -> Any:
    steps = (("xen", 2.0), ("dom0-kernel", 3.0), ("dom0", 30.0), ("toolstack", 35.0))
    return bench.SmokeTimeline("tcg", passed, "PASS: ...", steps, guests)


def results(
    *,
    cold: Any = None,
    no_change: Any = None,
    one_file: Any = None,
    smoke: Any = None,
    **extra: Any,
) -> Any:
    machine = bench.Machine(2, "AMD EPYC 7B13", 7.8, "6.1.0-28-amd64", "QEMU emulator version 7.2.15")
    return bench.BenchResults(
        date=dt.datetime(2026, 11, 27, 10, 30, tzinfo=dt.UTC),
        recipe="recipes/xen-demo.yaml",
        machine=machine,
        cold=cold,
        no_change=no_change or build(3.0, *ALL_CACHED),
        one_file=one_file or build(12.0, stage("dom0-config", False), stage("iso", False)),
        edited_file="overlays/xenlive/etc/default/xen",
        smoke=smoke,
        **extra,
    )


def figure(res: Any, label: str) -> Any:
    return next(f for f in bench.figures(res) if f.label == label)


# --- markers -------------------------------------------------------------------------------------


def test_the_section_between_the_markers_is_replaced_and_everything_outside_is_kept_byte_for_byte() -> None:
    head = "# Benchmarks\n\nHand-written notes, kept.\n\n"
    tail = "\n\n## History\n\n| old | table |\n"
    text = f"{head}{BEGIN}\nold figures\nmore old figures\n{END}{tail}"
    new = bench.replace_marked(text, "new figures\n")
    assert new == f"{head}{BEGIN}\nnew figures\n{END}{tail}"


def test_replacing_twice_with_the_same_section_changes_nothing() -> None:
    once = bench.replace_marked(f"intro\n{BEGIN}\nx\n{END}\noutro\n", "figures\n")
    assert bench.replace_marked(once, "figures\n") == once


def test_a_file_without_markers_gets_them_appended_after_its_text() -> None:
    new = bench.replace_marked("# Notes\n\nby hand\n", "figures\n")
    assert new == f"# Notes\n\nby hand\n\n{BEGIN}\nfigures\n{END}\n"


def test_a_missing_file_is_created_with_a_heading_and_the_markers() -> None:
    new = bench.replace_marked("", "figures\n")
    assert new.startswith("# xenlive benchmarks\n")
    assert new.endswith(f"\n{BEGIN}\nfigures\n{END}\n")


@pytest.mark.parametrize(
    "text",
    [
        f"{END}\nx\n{BEGIN}\n",  # reversed
        f"{BEGIN}\nx\n{END}\n{BEGIN}\ny\n{END}\n",  # twice
        f"{BEGIN}\nno end\n",  # half
    ],
)
def test_broken_markers_are_an_error_rather_than_a_guess_that_could_eat_text(text: str) -> None:
    with pytest.raises(bench.BenchError, match="markers"):
        bench.replace_marked(text, "figures\n")


def test_write_report_creates_the_file_and_later_keeps_what_was_added_by_hand(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    bench.write_report(path, "first\n")
    path.write_text("# Mine\n" + path.read_text() + "\nafterword\n")
    bench.write_report(path, "second\n")
    text = path.read_text()
    assert text.startswith("# Mine\n") and text.endswith(f"{BEGIN}\nsecond\n{END}\n\nafterword\n")
    assert "first" not in text


def test_another_recipe_is_measured_into_its_own_section_named_after_the_recipe_file() -> None:
    assert bench.section_name(bench.DEFAULT_RECIPE) == ""
    assert bench.section_name(bench.REPO / "recipes" / "ci-dib.yaml") == "ci-dib"
    assert bench.markers("ci-dib") == ("<!-- bench:begin ci-dib -->", "<!-- bench:end ci-dib -->")


def test_a_recipe_section_is_appended_at_the_end_and_later_replaced_leaving_the_demos_section_as_it_was() -> None:
    demo = f"# Benchmarks\n\nnotes\n\n{BEGIN}\ndemo figures\n{END}\n\n## History\n"
    with_dib = bench.replace_marked(demo, "dib figures\n", "ci-dib")
    dib_begin, dib_end = bench.markers("ci-dib")
    assert with_dib == f"{demo}\n{dib_begin}\ndib figures\n{dib_end}\n"

    again = bench.replace_marked(with_dib, "new dib figures\n", "ci-dib")
    assert again == f"{demo}\n{dib_begin}\nnew dib figures\n{dib_end}\n"
    # ...and the demo's section is replaced without touching the other recipe's
    assert bench.replace_marked(again, "new demo figures\n") == again.replace("demo figures", "new demo figures", 1)


def test_broken_markers_of_a_recipe_section_are_an_error_naming_them() -> None:
    dib_begin, _ = bench.markers("ci-dib")
    with pytest.raises(bench.BenchError, match="<!-- bench:end ci-dib -->"):
        bench.replace_marked(f"{BEGIN}\ndemo\n{END}\n{dib_begin}\nno end\n", "figures\n", "ci-dib")


def test_a_recipe_whose_file_name_cannot_name_a_section_is_refused_before_measuring() -> None:
    with pytest.raises(bench.BenchError, match="rename or copy the recipe"):
        bench.section_name(Path("recipes/my demo.yaml"))


def test_write_report_updates_only_the_named_section(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    bench.write_report(path, "demo\n")
    bench.write_report(path, "dib\n", "ci-dib")
    bench.write_report(path, "dib again\n", "ci-dib")
    assert path.read_text().endswith(
        f"{BEGIN}\ndemo\n{END}\n\n<!-- bench:begin ci-dib -->\ndib again\n<!-- bench:end ci-dib -->\n"
    )


def test_a_recipe_section_has_a_heading_of_its_own() -> None:
    assert bench.render_section(results()).startswith("## Latest run\n")
    assert bench.render_section(results(), "ci-dib").startswith("## Latest run: ci-dib\n")


# --- met / missed --------------------------------------------------------------------------------


def test_a_time_at_its_target_meets_it_and_a_tenth_above_misses() -> None:
    assert figure(results(no_change=build(2.0, *ALL_CACHED)), "No-change rebuild").value == 2.0
    assert bench.verdict(figure(results(no_change=build(2.0, *ALL_CACHED)), "No-change rebuild")) == "met"
    assert bench.verdict(figure(results(no_change=build(2.1, *ALL_CACHED)), "No-change rebuild")) == "missed"


def test_the_targets_are_those_of_a_cold_demo_in_90_s_and_an_edit_in_5_s() -> None:
    cold = build(90.0, stage("dom0-rootfs", False))
    res = results(cold=cold, one_file=build(5.1, stage("dom0-config", False), stage("iso", False)))
    assert bench.verdict(figure(res, "Cold build (empty cache)")) == "met"
    assert figure(res, "Cold build (empty cache)").target_text == "≤ 90 s"
    assert bench.verdict(figure(res, "Rebuild after editing one overlay file")) == "missed"


def test_a_second_recipe_meets_its_target_when_it_builds_only_its_own_stages() -> None:
    own = bench.NamedRun(
        "recipes/ci.yaml", build(3.0, *ALL_CACHED[:2], stage("dom0-config", False), stage("iso", False))
    )
    row = figure(results(second=own), "Second recipe (recipes/ci.yaml), same dom0 and guest image")
    assert (bench.format_value(row), bench.verdict(row), row.note) == ("3.0 s", "met", "reran: dom0-config, iso")
    shared = bench.NamedRun("recipes/ci.yaml", build(60.0, stage("guest-debian", False), stage("iso", False)))
    row = figure(results(second=shared), "Second recipe (recipes/ci.yaml), same dom0 and guest image")
    assert bench.verdict(row) == "missed" and row.note.endswith("rebuilt what it shares: guest-debian")


def test_another_recipe_shows_what_it_downloaded_and_what_came_from_the_package_cache() -> None:
    mib = 2**20
    stages = (
        bench.StageTiming("dom0-rootfs", False, 70.0, "new", 20 * mib, 110 * mib),
        bench.StageTiming("guest-debian-systemd", False, 60.0, "new", 30 * mib, 90 * mib),
    )
    other = bench.NamedRun("recipes/ci-systemd.yaml", build(75.0, *stages))
    row = figure(
        results(other=other),
        "Another recipe (recipes/ci-systemd.yaml), its own stages cold: Debian packages downloaded",
    )
    assert (bench.format_value(row), bench.verdict(row)) == ("50.0 MiB", "met")
    assert row.note.startswith("200 MiB from the package cache; 75.0 s")


def test_a_moved_cache_meets_its_target_when_every_stage_hits() -> None:
    assert bench.verdict(
        figure(results(moved=build(1.2, *ALL_CACHED)), "No-change rebuild after moving the cache")
    ) == ("met")
    rebuilt = build(80.0, stage("dom0-rootfs", False), *ALL_CACHED[1:])
    assert bench.verdict(figure(results(moved=rebuilt), "No-change rebuild after moving the cache")) == "missed"


def test_parallel_and_sequential_cold_builds_are_shown_side_by_side() -> None:
    res = results(cold=build(80.0, stage("dom0-rootfs", False)), sequential=build(120.0, stage("dom0-rootfs", False)))
    row = figure(res, "Cold build, one stage at a time (--jobs 1)")
    assert (bench.format_value(row), bench.verdict(row)) == ("120.0 s", "")
    assert row.note == "at the same time (the cold build above): 80.0 s, 40.0 s less"


def test_the_section_sets_the_figures_beside_live_builds() -> None:
    section = bench.render_section(results(cold=build(80.0, stage("dom0-rootfs", False))))
    assert "### Against the peer (Debian live-build, same job, same kind of machine)" in section
    assert "| cold build " in section and "225 s (300 s in a rerun), dom0 only" in section and "80.0 s" in section
    assert "184 s (clean, config, build" in section


def test_the_iso_target_is_300_decimal_megabytes() -> None:
    assert bench.verdict(figure(results(no_change=build(3.0, iso_bytes=300_000_000)), "ISO size")) == "met"
    assert bench.verdict(figure(results(no_change=build(3.0, iso_bytes=300_000_001)), "ISO size")) == "missed"


def test_a_skipped_measurement_is_not_run_rather_than_met_or_missed() -> None:
    res = results()  # no cold build, no smoke
    assert bench.verdict(figure(res, "Cold build (empty cache)")) == "not run"
    assert bench.format_value(figure(res, "First guest ready")) == "not run"
    assert bench.verdict(figure(res, "All default guests ready")) == "not run"


def test_guests_that_never_became_ready_miss_their_target_and_say_why() -> None:
    smoke = timeline(
        bench.GuestTime("debian", "ready", 41.0),
        bench.GuestTime("debian-pvh", "failed", 50.0, "xl create failed"),
        passed=False,
    )
    res = results(smoke=smoke)
    assert figure(res, "First guest ready").value == 41.0
    assert bench.verdict(figure(res, "First guest ready")) == "met"
    every = figure(res, "All default guests ready")
    assert (every.value, bench.verdict(every)) == (None, "missed")
    assert every.note == "not ready: debian-pvh failed (xl create failed)"


def test_all_guests_ready_is_when_the_last_one_was() -> None:
    smoke = timeline(bench.GuestTime("a", "ready", 44.0), bench.GuestTime("b", "ready", 58.5))
    res = results(smoke=smoke)
    assert figure(res, "First guest ready").value == 44.0
    assert figure(res, "All default guests ready").value == 58.5
    assert bench.verdict(figure(res, "All default guests ready")) == "met"


def test_steps_without_a_target_have_no_verdict() -> None:
    dom0 = figure(results(smoke=timeline(bench.GuestTime("a", "ready", 44.0))), "dom0 up")
    assert (dom0.value, bench.verdict(dom0)) == (30.0, "")


# --- tables --------------------------------------------------------------------------------------


def test_markdown_table_pads_columns_and_escapes_pipes() -> None:
    assert bench.markdown_table(["a", "bb"], [["x|y", "z"]]) == [
        "| a    | bb |",
        "| ---- | -- |",
        "| x\\|y | z  |",
    ]


def test_markdown_table_refuses_a_row_with_a_missing_cell() -> None:
    with pytest.raises(ValueError):
        bench.markdown_table(["a", "b"], [["only one"]])


def test_summary_row_of_the_one_file_rebuild_names_the_file_and_the_stages_that_reran() -> None:
    rows = bench.summary_table(results())
    row = next(r for r in rows if "editing one overlay file" in r)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells == [
        "Rebuild after editing one overlay file",
        "12.0 s",
        "≤ 5 s",
        "missed",
        "overlays/xenlive/etc/default/xen; reran: dom0-config, iso",
    ]


def test_the_section_has_the_machine_the_summary_and_the_cold_stages() -> None:
    cold = build(200.0, stage("dom0-rootfs", False, 120.0, "no cache entry"), stage("iso", False, 9.5, "new"))
    smoke = timeline(bench.GuestTime("debian", "ready", 43.2))
    section = bench.render_section(results(cold=cold, smoke=smoke))
    assert "- Date: 2026-11-27 10:30 UTC" in section
    assert "- Machine: 2 CPU(s), AMD EPYC 7B13, 7.8 GiB RAM, kernel 6.1.0-28-amd64" in section
    assert "- QEMU: QEMU emulator version 7.2.15; accelerator: tcg" in section
    assert "| Cold build (empty cache) " in section and "| 200.0 s " in section
    assert "| dom0-rootfs " in section and "| 120.0 " in section and "no cache entry" in section
    assert "| guest:debian " in section and "| 43.2 " in section


def test_without_a_cold_build_or_smoke_there_is_no_stage_or_timeline_table() -> None:
    section = bench.render_section(results())
    assert "per stage" not in section and "timeline" not in section
    assert "accelerator: not used (smoke skipped)" in section


# --- reading results back ------------------------------------------------------------------------


def test_a_build_run_is_read_from_the_manifest() -> None:
    manifest = {
        "stages": [
            {"name": "dom0-rootfs", "key": "k1", "cached": True, "seconds": 0.0, "reason": "cached"},
            {"name": "iso", "key": "k2", "cached": False, "seconds": 8.2, "reason": "upstream changed"},
        ],
        "iso": {"sha256": "00", "size": 123456},
        "guests": [],
        "build_seconds": 9.1,
    }
    run = run_from(manifest, 10.4)
    assert (run.wall_seconds, run.build_seconds, run.iso_bytes, run.rebuilt) == (10.4, 9.1, 123456, ["iso"])


def run_from(data: dict[str, Any], wall_seconds: float) -> bench.BuildRun:
    """A build run read back from one dict holding both what a manifest and a build record hold (each reader
    ignores the other's keys)."""
    return bench.build_run_from_manifest(parse_manifest(data), BuildRecord.model_validate(data), wall_seconds)


def test_a_manifest_without_stages_is_an_error() -> None:
    with pytest.raises(bench.BenchError, match="manifest"):
        run_from({"iso": {"size": 1}, "build_seconds": 1}, 1.0)


def test_the_timeline_is_taken_from_the_smoke_report() -> None:
    state = SmokeState(expected_guests=("debian", "debian-pvh"))
    state.apply(2.1, StepReached("xen", "4.17.5"))
    state.apply(31.0, StepReached("dom0", "6.1.0"))
    state.apply(36.5, StepReached("toolstack"))
    state.apply(37.0, Plan(("debian", "debian-pvh")))
    state.apply(44.0, GuestStatus("debian", "ready"))
    state.apply(52.0, GuestStatus("debian-pvh", "skipped", "no HVM"))
    report = SmokeReport(iso=Path("x.iso"), state=state, serial_log=Path("x.log"), junit=None, accel="tcg")
    smoke = bench.smoke_timeline(report, "PASS: ...")
    assert smoke.steps == (("xen", 2.1), ("dom0-kernel", None), ("dom0", 31.0), ("toolstack", 36.5))
    assert smoke.first_guest_ready == 44.0
    assert smoke.all_guests_ready is None  # a skipped guest is not a ready one
    assert smoke.not_ready() == "debian-pvh skipped (no HVM)"


def test_machine_facts_are_parsed_from_proc() -> None:
    cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC  7B13 64-Core Processor\n"
    assert bench.parse_cpu_model(cpuinfo) == "AMD EPYC 7B13 64-Core Processor"
    assert bench.parse_mem_gib("MemTotal:        8388608 kB\nMemFree: 1 kB\n") == 8.0
    assert bench.parse_mem_gib("nothing\n") is None


# --- the edited overlay file ---------------------------------------------------------------------


def test_the_edited_file_gets_its_exact_content_back_even_when_the_build_fails(tmp_path: Path) -> None:
    path = tmp_path / "xen"
    path.write_bytes(b"A=1\nB=2")  # no final newline
    with pytest.raises(RuntimeError), bench.appended_line(path, "# bench now"):
        assert path.read_bytes() == b"A=1\nB=2\n# bench now\n"
        raise RuntimeError("build failed")
    assert path.read_bytes() == b"A=1\nB=2"


def test_a_cache_dir_holding_the_checkout_or_home_is_never_wiped() -> None:
    with pytest.raises(bench.BenchError, match="refusing"):
        bench.check_wipeable(bench.REPO.parent)
    with pytest.raises(bench.BenchError, match="refusing"):
        bench.check_wipeable(Path.home())
    bench.check_wipeable(bench.REPO / "out" / "bench-cache")


def test_the_timeline_table_shows_each_guests_network_check_after_its_verdict() -> None:
    smoke = timeline(
        bench.GuestTime("a", "ready", 44.0, network="ok", network_at=49.5, network_detail="addr=10.0.3.10"),
        bench.GuestTime("b", "skipped", 1.0, "pvh needs hardware virtualisation"),
    )
    rows = [row for row in bench.timeline_table(smoke) if "guest:" in row or "network:" in row]
    assert [row.split("|")[1].strip() for row in rows] == ["guest:a", "network:a", "guest:b"]
    assert "49.5" in rows[1] and "ok: addr=10.0.3.10" in rows[1]


# --- guest images --------------------------------------------------------------------------------

LEFT_OUT = "image freebsd not built: cannot download https://download.freebsd.org/base.txz: HTTP 404"


def demo_manifest() -> dict[str, Any]:
    """The parts of the demo's manifest the guest table reads: two guests share an image, one is left out."""

    def guest(name: str, image: str, type_: str, builder: str) -> dict[str, Any]:
        image_file = f"/work/main/guest-images/{image}.yaml"
        return {
            "name": name,
            "image": image,
            "type": type_,
            "autostart": True,
            "image_file": image_file,
            "builder": builder,
        }

    return {
        "stages": [
            {"name": "dom0-rootfs", "key": "k1", "cached": False, "seconds": 92.7, "reason": "no cached entry"},
            {"name": "guest-debian", "key": "k2", "cached": False, "seconds": 57.0, "reason": "no cached entry"},
            {"name": "iso", "key": "k3", "cached": False, "seconds": 8.2, "reason": "no cached entry"},
        ],
        "iso": {"sha256": "00", "size": 257138688},
        "build_seconds": 158.3,
        "guests": [
            guest("debian", "debian", "pv", "mmdebstrap"),
            guest("debian-pvh", "debian", "pvh", "mmdebstrap"),
            guest("freebsd", "freebsd", "pvh", "freebsd"),
        ],
        "left_out": [{"guest": "freebsd", "image": "freebsd", "reason": LEFT_OUT}],
        "guest_images": {
            "debian": {"kernel": "6.1.0-28-amd64", "disk_mib": 579, "squashfs_mib": 231.4, "packages": {}}
        },
    }


def guest_rows(table: list[str]) -> dict[str, dict[str, str]]:
    """The guest table's rows by guest name, each a map from column heading to its (stripped) cell."""
    header, *rows = ([cell.strip() for cell in line.strip("|").split("|")] for line in [table[0], *table[2:]])
    return {row[0]: dict(zip(header, row, strict=True)) for row in rows}


def cells(row: dict[str, str], *columns: str) -> list[str]:
    return [row[column] for column in columns]


BOOT = ("Ready at (s)", "Network at (s)", "Notes")


def test_each_guest_is_read_from_the_manifest_with_its_image_stage_and_sizes() -> None:
    run = run_from(demo_manifest(), 159.0)
    debian, debian_pvh, freebsd = run.guests
    assert (debian.name, debian.type, debian.image, debian.builder) == ("debian", "pv", "debian", "mmdebstrap")
    assert debian.stage == stage("guest-debian", False, 57.0, "no cached entry")
    assert (debian.disk_mib, debian.squashfs_mib, debian.left_out) == (579, 231.4, "")
    assert debian_pvh.stage == debian.stage and debian_pvh.type == "pvh"
    assert (freebsd.stage, freebsd.disk_mib, freebsd.squashfs_mib, freebsd.left_out) == (None, None, None, LEFT_OUT)


def test_a_manifest_from_before_squashfs_mib_shows_no_size_on_the_iso() -> None:
    manifest = demo_manifest()
    del manifest["guest_images"]["debian"]["squashfs_mib"]
    run = run_from(manifest, 159.0)
    row = guest_rows(bench.guest_table(run.guests, None))["debian"]
    assert cells(row, "Disk (MiB)", "On ISO (MiB)") == ["579", "-"]


def test_the_guest_table_has_build_time_sizes_and_boot_times_and_says_why_a_guest_was_left_out() -> None:
    run = run_from(demo_manifest(), 159.0)
    smoke = timeline(
        bench.GuestTime("debian", "ready", 171.1, network="ok", network_at=176.8, network_detail="addr=10.0.3.10"),
        bench.GuestTime("debian-pvh", "ready", 377.1, network="failed", network_at=380.0, network_detail="no DHCP"),
        bench.GuestTime("freebsd", "skipped", 84.0, LEFT_OUT),
    )
    rows = guest_rows(bench.guest_table(run.guests, smoke))
    assert rows["debian"] == {
        "Guest": "debian",
        "Type": "pv",
        "Image": "debian",
        "Builder": "mmdebstrap",
        "Image build (s)": "57.0",
        "Disk (MiB)": "579",
        "On ISO (MiB)": "231.4",
        "Ready at (s)": "171.1",
        "Network at (s)": "176.8",
        "Notes": "",
    }
    assert cells(rows["debian-pvh"], "Type", "Image build (s)", *BOOT) == [
        "pvh",
        "57.0",  # the same image as debian's, built once
        "377.1",
        "failed",
        "network failed: no DHCP",
    ]
    assert cells(rows["freebsd"], "Builder", "Image build (s)", "Disk (MiB)", "On ISO (MiB)", *BOOT) == [
        "freebsd",
        "left out",
        "-",
        "-",
        "skipped",
        "-",
        f"left out: {LEFT_OUT}",  # not repeated as the reason it was skipped at boot
    ]


def test_a_guest_whose_image_was_cached_or_that_did_not_boot_says_so() -> None:
    manifest = demo_manifest()
    manifest["stages"][1].update(cached=True, seconds=0.0)
    manifest["guests"][1]["autostart"] = False
    run = run_from(manifest, 2.0)
    smoke = timeline(bench.GuestTime("debian", "failed", 95.0, "xl create failed"))
    rows = guest_rows(bench.guest_table(run.guests, smoke))
    assert cells(rows["debian"], "Image build (s)", *BOOT) == ["cached", "failed", "-", "failed: xl create failed"]
    assert cells(rows["debian-pvh"], *BOOT) == ["not started", "-", "autostart: no"]
    unbooted = guest_rows(bench.guest_table(run.guests, None))
    assert cells(unbooted["debian"], *BOOT) == ["not run", "not run", ""]


def test_the_section_has_a_guest_table_from_the_cold_build_or_else_from_the_no_change_rebuild() -> None:
    cold = run_from(demo_manifest(), 159.0)
    section = bench.render_section(results(cold=cold))
    assert "### Guest images" in section and "in the cold build;" in section
    assert "| debian-pvh " in section and "| 57.0 " in section

    warm = demo_manifest()
    for entry in warm["stages"]:
        entry.update(cached=True, seconds=0.0)
    section = bench.render_section(results(no_change=run_from(warm, 1.6)))
    assert "in the no-change rebuild (no cold build measured);" in section
    assert "| cached " in section and "| 57.0 " not in section


def test_a_parallel_build_slower_than_the_sequential_one_says_so() -> None:
    res = results(cold=build(130.0, stage("dom0-rootfs", False)), sequential=build(120.0, stage("dom0-rootfs", False)))
    assert figure(res, "Cold build, one stage at a time (--jobs 1)").note.endswith("130.0 s, 10.0 s more")


# --- network verdicts, boot profiles and boot media ---------------------------------------------


def test_every_network_verdict_is_when_the_last_one_came_and_misses_when_one_failed() -> None:
    ok = timeline(
        bench.GuestTime("a", "ready", 40.0, network="ok", network_at=52.0),
        bench.GuestTime("b", "ready", 70.0, network="ok", network_at=85.5),
    )
    assert figure(results(smoke=ok), "Every network verdict").value == 85.5
    assert bench.verdict(figure(results(smoke=ok), "Every network verdict")) == "met"
    bad = timeline(
        bench.GuestTime("a", "ready", 40.0, network="ok", network_at=52.0),
        bench.GuestTime("b", "ready", 70.0, network="failed", network_at=80.0, network_detail="no DHCP address"),
        passed=False,
    )
    failed = figure(results(smoke=bad), "Every network verdict")
    assert (failed.value, bench.verdict(failed)) == (None, "missed")
    assert failed.note == "not ok: b failed: no DHCP address"


def test_the_other_profile_is_shown_beside_the_recipe_with_the_ratio() -> None:
    mine = timeline(bench.GuestTime("a", "ready", 40.0, network="ok", network_at=50.0))
    theirs = bench.SmokeTimeline(
        "tcg",
        True,
        "PASS: ...",
        (("xen", 2.0), ("dom0-kernel", 3.0), ("dom0", 60.0), ("toolstack", 70.0)),
        (bench.GuestTime("a", "ready", 100.0, network="ok", network_at=125.0),),
    )
    res = results(smoke=mine)
    res = bench.BenchResults(
        **{**res.__dict__, "profile": bench.ProfileBoot("recipes/xen-demo-systemd.yaml", "systemd", theirs)}
    )
    section = bench.render_section(res)
    assert "### Boot profiles: dom0.init runit against systemd" in section
    rows = {
        line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
        for line in section.splitlines()
        if line.startswith("| ") and "|" in line[2:]
    }
    assert rows["dom0 up"] == ["30.0", "60.0", "2.00"]
    assert rows["First guest ready"] == ["40.0", "100.0", "2.50"]
    assert rows["Every network verdict"] == ["50.0", "125.0", "2.50"]


def test_each_boot_medium_gets_a_column_with_its_verdict() -> None:
    bios = timeline(bench.GuestTime("a", "ready", 40.0))
    usb = timeline(bench.GuestTime("a", "failed", 90.0, "not ready after 600s"), passed=False)
    table = bench.media_table(bios, [bench.MediumBoot("UEFI CD", bios), bench.MediumBoot("USB stick (BIOS)", usb)])
    assert table[0].split("|")[2:-1] == [" BIOS CD ", " UEFI CD ", " USB stick (BIOS) "]
    verdicts = next(line for line in table if line.startswith("| Smoke verdict"))
    assert [c.strip() for c in verdicts.split("|")[2:-1]] == ["PASS", "PASS", "FAIL"]


def test_all_guests_ready_counts_the_guests_on_the_iso_and_names_those_the_build_left_out() -> None:
    smoke = dataclasses.replace(
        timeline(
            bench.GuestTime("debian", "ready", 42.6, network="ok", network_at=60.9),
            bench.GuestTime("debian-pvh", "ready", 58.6, network="ok", network_at=68.8),
            bench.GuestTime("freebsd", "skipped", 25.2, LEFT_OUT),
        ),
        left_out=(("freebsd", LEFT_OUT),),
    )
    assert (smoke.all_guests_ready, smoke.all_networks_checked) == (58.6, 68.8)
    every = figure(results(smoke=smoke), "All default guests ready")
    assert bench.verdict(every) == "met"
    assert every.note == f"2 guest(s) on the ISO; left out of the ISO by the build: freebsd ({LEFT_OUT})"
    # A guest on the ISO that dom0 skipped (no HVM) is still one that was not ready.
    no_hvm = dataclasses.replace(
        smoke, guests=(*smoke.guests[:1], bench.GuestTime("debian-pvh", "skipped", 30.0, "no HVM"))
    )
    assert no_hvm.all_guests_ready is None and no_hvm.not_ready() == "debian-pvh skipped (no HVM)"


# --- several boots of the same ISO -----------------------------------------------------------------


def boot(first: float, second: float, network: float, *, passed: bool = True) -> Any:
    return timeline(
        bench.GuestTime("a", "ready", first, network="ok", network_at=first + 5.0),
        bench.GuestTime("b", "ready", second, network="ok" if passed else "failed", network_at=network),
        passed=passed,
    )


def test_the_boot_figures_are_the_medians_of_the_boots_each_listed() -> None:
    boots = (boot(44.0, 70.0, 80.0), boot(40.0, 76.0, 95.0), boot(52.0, 60.0, 88.0))
    res = results(smoke=bench.median_boot(boots), boots=boots)
    first, every, networks = (
        figure(res, label) for label in ("First guest ready", "All default guests ready", "Every network verdict")
    )
    assert (first.value, every.value, networks.value) == (44.0, 70.0, 88.0)
    assert [bench.verdict(f) for f in (first, every, networks)] == ["met", "met", "met"]
    assert first.note == "median of 3 boots: 44.0, 40.0, 52.0"
    assert networks.note.startswith("median of 3 boots: 80.0, 95.0, 88.0")
    # A median above the target misses it, however good the best boot was.
    slow = (boot(44.0, 70.0, 80.0), boot(47.0, 76.0, 95.0), boot(52.0, 60.0, 88.0))
    assert bench.verdict(figure(results(smoke=bench.median_boot(slow), boots=slow), "First guest ready")) == "missed"
    assert "medians of 3 boots" in bench.render_section(res)


def test_the_boot_shown_is_the_median_by_the_last_network_verdict_or_the_one_that_failed() -> None:
    a, b, c = boot(44.0, 70.0, 80.0), boot(40.0, 76.0, 95.0), boot(52.0, 60.0, 88.0)
    assert bench.median_boot((a, b, c)) is c
    assert bench.median_boot((a, b)) is a  # the lower of the middle two
    failed = boot(41.0, 65.0, 90.0, passed=False)
    assert bench.median_boot((a, failed, c)) is failed
    res = results(smoke=failed, boots=(a, failed))
    networks = figure(res, "Every network verdict")
    assert (networks.value, bench.verdict(networks)) == (None, "missed")
    assert networks.note.startswith("median of 2 boots: 80.0, -")


def test_one_boot_has_no_median_note_and_boots_must_be_at_least_one(capsys: Any) -> None:
    one = boot(44.0, 70.0, 80.0)
    assert figure(results(smoke=one), "First guest ready").note == ""
    assert bench.parse_args([]).boots == 3
    assert bench.parse_args(["--boots", "1"]).boots == 1
    for bad in ("0", "two"):
        with pytest.raises(SystemExit) as exit_info:
            bench.parse_args(["--boots", bad])
        assert exit_info.value.code == 2
        assert "is not a whole number of at least 1" in capsys.readouterr().err


# --- the default suite against bookworm, and six guests ---------------------------------------------------------


def ready(*at: float, passed: bool = True) -> Any:
    """A boot whose guests guest1, guest2, ... were ready at `at`, each network checked 4 s later."""
    guests = (bench.GuestTime(f"guest{n}", "ready", a, network="ok", network_at=a + 4.0) for n, a in enumerate(at, 1))
    return timeline(*guests, passed=passed)


TIMES = "\N{MULTIPLICATION SIGN}"


def built(*types: str, wall: float = 3.0, iso_mib: float = 240.0) -> Any:
    guests = tuple(
        bench.GuestBuild(f"guest{n}", kind, "debian", "mmdebstrap", True, None, 533, 76.1)
        for n, kind in enumerate(types, 1)
    )
    return bench.BuildRun(wall, wall - 0.5, (), int(iso_mib * 2**20), guests)


DEMO_BOOTS = (
    ready(31.0, 36.0),
    ready(30.0, 38.0),
    ready(29.0, 37.0),
)  # medians 30, 37, 41; the shown boot's first is 31
SIX_BOOTS = tuple(ready(*(30.0 + 5.0 * i + d for i in range(6))) for d in (0.0, 2.0, 1.0))  # last ready: median 56


def suite_results(**extra: Any) -> Any:
    fields: dict[str, Any] = {
        "cold": build(55.0),
        "smoke": bench.median_boot(DEMO_BOOTS),
        "boots": DEMO_BOOTS,
        "media": (
            bench.MediumBoot("UEFI CD", ready(36.0, 44.0)),
            bench.MediumBoot("USB stick (BIOS)", ready(1.0, 2.0)),
        ),
        "bookworm": bench.RecipeBoots(
            "recipes/xen-demo-bookworm.yaml",
            built("pv", "pvh", wall=52.0, iso_mib=231.1),
            (ready(29.7, 35.7), ready(33.0, 40.0), ready(29.0, 35.0)),
        ),
        "six_guests": bench.RecipeBoots(
            "bench/six-guests.yaml", built("pv", "pvh", "pv", "pvh", "pv", "pvh"), SIX_BOOTS
        ),
    }
    return results(**{**fields, **extra})


def suite_cells(section: str) -> dict[str, list[str]]:
    """The rows of the "Trixie against bookworm" table, by their first cell."""
    table = section.split("### Trixie against bookworm")[1].split("\n\n")[2]
    return {row.split("|")[1].strip(): [c.strip() for c in row.split("|")[2:-1]] for row in table.splitlines()[2:]}


def test_one_table_sets_each_trixie_figure_against_its_target_beside_the_bookworm_demo_of_the_same_run() -> None:
    rows = suite_cells(bench.render_section(suite_results()))
    # trixie, target, result, bookworm this run, bookworm 12-01, bookworm against 12-01
    assert rows["First guest ready after power-on"][:6] == [
        "30.0 s",
        "≤ 35 s",
        "met",
        "29.7 s",
        "29.7 s",
        "+0.0%: within 10%",
    ]
    assert rows["Every guest ready"][:5] == ["37.0 s", "≤ 45 s", "met", "35.7 s", "35.7 s"]
    assert rows["Every network verdict"][:5] == ["41.0 s", "≤ 55 s", "met", "39.7 s", "40.9 s"]
    assert rows["Every network verdict"][6] == (
        "median of 3 boots: 40.0, 42.0, 41.0; bookworm median of 3 boots: 39.7, 44.0, 39.0"
    )
    six = rows["Six Debian guests (`bench/six-guests.yaml`): every guest ready"]
    assert six[:6] == ["56.0 s", "≤ 60 s", "met", "not measured (default suite only)", "not measured", "-"]
    # The UEFI boot over the median of the BIOS boots (30.0 s), not over the boot shown (31.0 s).
    assert rows["UEFI CD: first guest ready, as a ratio to the BIOS CD"][:6] == [
        f"1.20{TIMES}",
        f"≤ 1.2{TIMES}",
        "met",
        "not measured (BIOS CD only)",
        f"1.60{TIMES}",
        "-",
    ]
    assert rows["Cold build of the demo, empty cache"][:6] == [
        "55.0 s",
        "≤ 60 s",
        "met",
        "52.0 s",
        "47.1-73.0 s",
        "in the range: within 10%",
    ]
    assert rows["ISO size"][:5] == ["200.0 MiB", "≤ 250 MiB", "met", "231.1 MiB", "231.1 MiB"]


def test_a_trixie_figure_above_its_target_misses_it_and_a_uefi_boot_without_a_guest_misses_the_ratio() -> None:
    slow = (ready(36.0, 46.0), ready(35.5, 50.0), ready(40.0, 47.0))
    rows = suite_cells(
        bench.render_section(
            suite_results(
                smoke=bench.median_boot(slow),
                boots=slow,
                cold=build(61.0),
                media=(bench.MediumBoot("UEFI CD", timeline(bench.GuestTime("guest1", "failed", 90.0))),),
            )
        )
    )
    assert rows["First guest ready after power-on"][:3] == ["36.0 s", "≤ 35 s", "missed"]
    assert rows["Every guest ready"][:3] == ["47.0 s", "≤ 45 s", "missed"]
    assert rows["Cold build of the demo, empty cache"][:3] == ["61.0 s", "≤ 60 s", "missed"]
    assert rows["UEFI CD: first guest ready, as a ratio to the BIOS CD"][:3] == [
        "not reached",
        f"≤ 1.2{TIMES}",
        "missed",
    ]


def test_bookworm_is_within_ten_percent_of_its_12_01_figure_either_way_and_the_section_says_where_not() -> None:
    assert bench.against_reference(29.7 * 1.1, (29.7, 29.7)) == (pytest.approx(0.1), True)
    assert bench.against_reference(29.7 * 0.9, (29.7, 29.7))[1] is True
    assert bench.against_reference(29.7 * 1.11, (29.7, 29.7))[1] is False
    assert bench.against_reference(29.7 * 0.89, (29.7, 29.7))[1] is False  # faster too: not the same machine
    assert bench.against_reference(60.0, (47.1, 73.0)) == (0.0, True)
    assert bench.against_reference(None, (29.7, 29.7)) == (None, False)
    section = bench.render_section(suite_results())
    assert "within 10% of its 12-01 figures on all 5 measured" in section
    slow = bench.RecipeBoots(
        "recipes/xen-demo-bookworm.yaml", built("pv", "pvh", wall=90.0, iso_mib=231.1), (ready(35.0, 36.0),)
    )
    section = bench.render_section(suite_results(bookworm=slow))
    rows = suite_cells(section)
    assert rows["First guest ready after power-on"][5] == "+17.8%: not within 10%"
    assert rows["Cold build of the demo, empty cache"][5] == "+23.3%: not within 10%"
    assert (
        "on 2 of 5: First guest ready after power-on (+17.8%), Cold build of the demo, empty cache (+23.3%)" in section
    )


def test_parts_left_out_say_by_which_option_and_without_both_there_is_no_suite_section() -> None:
    assert "### Trixie against bookworm" not in bench.render_section(suite_results(bookworm=None, six_guests=None))
    rows = suite_cells(bench.render_section(suite_results(bookworm=None)))
    assert rows["First guest ready after power-on"][3:6] == ["skipped (--skip-bookworm)", "29.7 s", "-"]
    assert rows["ISO size"][3] == "skipped (--skip-bookworm)"
    rows = suite_cells(bench.render_section(suite_results(six_guests=None, media=(), cold=None)))
    assert rows["Six Debian guests: every guest ready"][:3] == ["not run", "≤ 60 s", "not run"]
    assert rows["Six Debian guests: every guest ready"][6] == "skipped (--skip-six-guests or --skip-smoke)"
    assert rows["UEFI CD: first guest ready, as a ratio to the BIOS CD"][2] == "not run"
    assert rows["Cold build of the demo, empty cache"][2] == "not run"
    # Bookworm built but not booted (--skip-smoke): its cold build and ISO are there, its boot figures are not.
    unbooted = bench.RecipeBoots("recipes/xen-demo-bookworm.yaml", built("pv", "pvh", wall=50.0), ())
    rows = suite_cells(bench.render_section(suite_results(bookworm=unbooted)))
    assert rows["Every guest ready"][3:6] == ["skipped (--skip-smoke)", "35.7 s", "-"]
    assert rows["Cold build of the demo, empty cache"][3] == "50.0 s"


def test_the_growth_with_the_number_of_guests_is_shown_per_guest_and_from_the_demo_to_six_guests() -> None:
    section = bench.render_section(suite_results())
    growth = section.split("### Boot time by number of guests")[1]
    rows = {
        r.split("|")[1].strip(): [c.strip() for c in r.split("|")[2:-1]]
        for r in growth.splitlines()
        if r.startswith("| ")
    }
    # guests, first ready, every ready, every network verdict, per guest after the first
    assert rows["`recipes/xen-demo.yaml`"] == ["2", "30.0", "37.0", "41.0", "7.0"]
    assert rows["`bench/six-guests.yaml`"] == ["6", "31.0", "56.0", "60.0", "5.0"]
    assert "From 2 guests to 6, every guest ready moved from 37.0 s to 56.0 s: 4.8 s per guest more." in growth
    assert rows["guest1"] == ["pv", "31.0", "-"]
    assert rows["guest2"] == ["pvh", "36.0", "5.0"]
    assert rows["guest6"] == ["pvh", "56.0", "5.0"]
    assert "six guests: PASS: ..." in section and "bookworm: PASS: ..." in section


def test_a_guest_that_never_became_ready_comes_last_in_the_growth_table_and_spoils_no_gap() -> None:
    late = timeline(
        bench.GuestTime("guest1", "ready", 30.0),
        bench.GuestTime("guest2", "failed", 90.0, "not ready"),
        bench.GuestTime("guest3", "ready", 40.0),
    )
    six = bench.RecipeBoots("bench/six-guests.yaml", built("pv", "pvh", "pv"), (late,))
    rows = {r.split("|")[1].strip(): [c.strip() for c in r.split("|")[2:-1]] for r in bench.guest_ready_table(six)[2:]}
    assert list(rows) == ["guest1", "guest3", "guest2"]
    assert rows["guest3"] == ["pv", "40.0", "10.0"] and rows["guest2"] == ["pvh", "-", "-"]
    assert bench.growth("bench/six-guests.yaml", (late,)).per_guest is None  # not every guest was ready


def test_the_bookworm_and_six_guest_parts_can_be_left_out_with_the_others() -> None:
    args = bench.parse_args([])
    assert (args.skip_bookworm, args.skip_six_guests) == (False, False)
    args = bench.parse_args(["--skip-bookworm", "--skip-six-guests", "--skip-media", "--skip-cold", "--boots", "1"])
    assert (args.skip_bookworm, args.skip_six_guests, args.skip_media, args.boots) == (True, True, True, 1)


class Build(NamedTuple):
    recipe: str  # as shown
    out: str  # the output directory's name
    cache: Path | None
    account: str | None  # None: root
    cold: bool  # the cache was empty


class FakeRun:
    """bench.py's builds and boots recorded instead of run: each build (a Build) and (ISO, medium) of each boot;
    the ordinary account is made under tmp_path/home, owned by whoever runs the test."""

    def __init__(self, monkeypatch: Any, tmp_path: Path) -> None:
        self.builds: list[Build] = []
        self.boots: list[tuple[str, str]] = []
        self.given: list[tuple[str, Path]] = []  # (account, path) made the account's
        self.home = tmp_path / "home"
        edited = tmp_path / "edited"
        edited.write_text("x\n")
        monkeypatch.setattr(bench, "EDITED_FILE", edited)
        monkeypatch.setattr(bench, "default_cache_base", lambda: tmp_path / "cache")
        monkeypatch.setattr(bench, "find_machine", lambda: bench.Machine(2, "cpu", 8.0, "6.12", "qemu 10"))
        monkeypatch.setattr(bench, "ensure_account", self.account)
        monkeypatch.setattr(bench, "give", lambda account, path: self.given.append((account.name, path)))
        monkeypatch.setattr(bench, "run_build", self.build)
        monkeypatch.setattr(bench, "run_smoke_timeline", self.boot)

    def account(self, name: str) -> Any:
        (self.home / name).mkdir(parents=True, exist_ok=True)
        return bench.Account(name, os.getuid(), os.getgid(), self.home / name)

    def build(
        self, recipe: Path, out: Path, cache_dir: Path | None, manifest: str, extra: Any = (), account: Any = None
    ) -> Any:
        cold = cache_dir is not None and not any(cache_dir.iterdir())
        self.builds.append(Build(bench._shown(recipe), out.name, cache_dir, account and account.name, cold))
        if cache_dir is not None:
            (cache_dir / "entry").mkdir(exist_ok=True)  # what a build leaves in its cache
        return built("pv", "pvh", wall=10.0)

    def boot(
        self, iso: Path, out: Path, timeout: float, *, uefi: bool = False, usb: bool = False, tag: str = ""
    ) -> Any:
        self.boots.append((iso.name, "uefi" if uefi else "usb" if usb else "bios"))
        return ready(30.0, 36.0)

    def recipes(self) -> list[str]:
        return [b.recipe for b in self.builds]


def test_one_run_of_the_demo_cold_builds_bookworm_in_a_cache_of_its_own_and_boots_it_and_six_guests(
    monkeypatch: Any, tmp_path: Path
) -> None:
    fake = FakeRun(monkeypatch, tmp_path)
    res = bench.measure(bench.parse_args(["--out", str(tmp_path / "out")]))
    recipes = fake.recipes()
    assert recipes.count("recipes/xen-demo-bookworm.yaml") == 1 and recipes.count("bench/six-guests.yaml") == 1
    demo_cache = fake.builds[0][2]
    six = next(b for b in fake.builds if b[0] == "bench/six-guests.yaml")
    bookworm = next(b for b in fake.builds if b[0] == "recipes/xen-demo-bookworm.yaml")
    assert six[2] == demo_cache  # it shares dom0 and the guest image: it builds only its own stages
    assert bookworm[2] not in (demo_cache, None) and bookworm[1] == "bookworm"
    assert not any((tmp_path / "cache").iterdir())  # every temporary cache is gone
    # Every build before the first boot; the demo's boots (BIOS, the profile, the media), then bookworm's and six's.
    assert [iso for iso, medium in fake.boots] == [
        *["xen-demo.iso"] * 3,
        "xen-demo-systemd.iso",
        "xen-demo.iso",
        "xen-demo.iso",
        *["xen-demo-bookworm.iso"] * 3,
        *["xenlive-six-guests.iso"] * 3,
    ]
    assert res.bookworm is not None and len(res.bookworm.boots) == 3 and res.bookworm.recipe == bookworm[0]
    assert res.six_guests is not None and len(res.six_guests.boots) == 3


def test_the_bookworm_and_six_guest_parts_follow_their_options_and_only_the_demo_has_them(
    monkeypatch: Any, tmp_path: Path
) -> None:
    out = ["--out", str(tmp_path / "out"), "--skip-sequential", "--skip-sharing", "--skip-moved", "--skip-profile"]
    out.append("--skip-user")
    fake = FakeRun(monkeypatch, tmp_path)
    res = bench.measure(bench.parse_args([*out, "--skip-bookworm", "--skip-six-guests", "--skip-media"]))
    assert fake.recipes() == ["recipes/xen-demo.yaml"] * 3 and (res.bookworm, res.six_guests) == (None, None)
    fake = FakeRun(monkeypatch, tmp_path)
    res = bench.measure(bench.parse_args([*out, "--skip-smoke", "--boots", "1"]))
    # Without boots: bookworm is still cold-built (its build and ISO are figures), six guests not at all.
    assert "recipes/xen-demo-bookworm.yaml" in fake.recipes() and "bench/six-guests.yaml" not in fake.recipes()
    assert fake.boots == [] and res.bookworm is not None and res.bookworm.boots == () and res.six_guests is None
    fake = FakeRun(monkeypatch, tmp_path)
    res = bench.measure(bench.parse_args([*out, "--boots", "1", "--recipe", "recipes/ci.yaml"]))
    assert set(fake.recipes()) == {"recipes/ci.yaml"} and (res.bookworm, res.six_guests) == (None, None)


# --- a build by an ordinary user beside root's ------------------------------------------------------------------

ISO_SHA = "1a2b3c4d5e6f" + "0" * 52
MANIFEST_SHA = "abcdef012345" + "9" * 52


def digests(run: Any, iso: str = ISO_SHA, manifest: str = MANIFEST_SHA) -> Any:
    return dataclasses.replace(run, iso_sha256=iso, manifest_sha256=manifest)


def user_cells(section: str) -> dict[str, list[str]]:
    """The rows of the "Root against user build" table, by their first cell."""
    table = section.split("### Root against user build")[1].split("\n\n")[2]
    return {row.split("|")[1].strip(): [c.strip() for c in row.split("|")[2:-1]] for row in table.splitlines()[2:]}


def user_results(user_cold: Any, user_no_change: Any, root_cold: Any = None) -> Any:
    root = root_cold if root_cold is not None else digests(build(50.0, stage("dom0-rootfs", False, 30.0)))
    return results(
        cold=root,
        no_change=build(1.0, *ALL_CACHED),
        user=bench.UserBuilds("xenlive-bench", user_cold, user_no_change),
    )


def test_the_users_cold_build_meets_its_target_up_to_1_3_times_roots_and_its_rebuild_up_to_2_s() -> None:
    rows = user_cells(bench.render_section(user_results(digests(build(65.0)), build(2.0, *ALL_CACHED))))
    # root, user, user / root, target, result, notes
    assert rows["Cold build (empty cache)"] == [
        "50.0 s",
        "65.0 s",
        f"1.30{TIMES}",
        f"≤ 1.3{TIMES}",
        "met",
        "build_iso: root 49.5 s, user 64.5 s",
    ]
    assert rows["No-change rebuild"] == [
        "1.0 s",
        "2.0 s",
        f"2.00{TIMES}",
        "≤ 2 s",
        "met",
        "user's: every stage cached",
    ]
    rows = user_cells(
        bench.render_section(
            user_results(digests(build(65.6)), build(2.1, stage("dom0-config", False), *ALL_CACHED[:2]))
        )
    )
    assert rows["Cold build (empty cache)"][2:5] == [f"1.31{TIMES}", f"≤ 1.3{TIMES}", "missed"]
    assert rows["No-change rebuild"][3:] == ["≤ 2 s", "missed", "user's: reran: dom0-config"]


def test_the_user_table_says_whether_the_user_made_the_same_iso_and_manifest_as_root() -> None:
    same = user_cells(bench.render_section(user_results(digests(build(60.0)), build(1.0))))
    assert same["ISO sha256 equal"] == ["1a2b3c4d5e6f", "1a2b3c4d5e6f", "", "equal", "yes", ""]
    assert same["Manifest equal (byte for byte)"] == ["abcdef012345", "abcdef012345", "", "equal", "yes", ""]
    other_iso = digests(build(60.0), iso="ffff" + ISO_SHA[4:])
    rows = user_cells(bench.render_section(user_results(other_iso, build(1.0))))
    assert rows["ISO sha256 equal"][:5] == ["1a2b3c4d5e6f", "ffff3c4d5e6f", "", "equal", "no"]
    assert rows["Manifest equal (byte for byte)"][4] == "yes"
    other_manifest = digests(build(60.0), manifest="0" * 64)
    rows = user_cells(bench.render_section(user_results(other_manifest, build(1.0))))
    assert (rows["ISO sha256 equal"][4], rows["Manifest equal (byte for byte)"][4]) == ("yes", "no")
    # A digest the manifest lacked is not taken for a match.
    rows = user_cells(bench.render_section(user_results(digests(build(60.0), iso=""), build(1.0))))
    assert rows["ISO sha256 equal"][4:] == ["not compared", "a digest is missing"]


def test_without_roots_cold_build_the_user_build_is_set_against_nothing_and_without_a_user_build_no_table() -> None:
    res = dataclasses.replace(user_results(digests(build(60.0)), build(1.0)), cold=None)
    rows = user_cells(bench.render_section(res))
    assert rows["Cold build (empty cache)"][:5] == ["not run", "60.0 s", "not run", f"≤ 1.3{TIMES}", "not run"]
    assert rows["ISO sha256 equal"][4:] == ["not compared", "no cold build by root (--skip-cold)"]
    assert rows["No-change rebuild"][4] == "met"
    assert "### Root against user build" not in bench.render_section(results(cold=build(50.0)))


def test_a_build_run_holds_the_isos_sha256_and_the_digest_of_the_manifests_bytes() -> None:
    manifest = {
        "stages": [{"name": "iso", "key": "k", "cached": False, "seconds": 8.2, "reason": "new"}],
        "iso": {"sha256": ISO_SHA, "size": 1},
        "guests": [],
        "build_seconds": 9.1,
    }
    run = bench.build_run_from_manifest(parse_manifest(manifest), BuildRecord.model_validate(manifest), 10.0, "ab")
    assert (run.iso_sha256, run.manifest_sha256) == (ISO_SHA, "ab")


def test_a_user_build_runs_this_checkouts_build_py_as_the_account_through_runuser(
    monkeypatch: Any, tmp_path: Path
) -> None:
    account = bench.Account("xenlive-bench", 1001, 1001, tmp_path / "home")
    asuser = sys.modules["asuser"]
    monkeypatch.setattr(asuser, "python_for", lambda account: ("/usr/bin/python3.11", {"PYTHONPATH": "/co"}))
    recipe, out, cache = Path("/co/recipes/xen-demo.yaml"), tmp_path / "user", tmp_path / "home" / ".cache" / "c"
    build_args = ["build", str(recipe), "-o", str(out), "--cache-dir", str(cache)]
    root = bench.build_argv(recipe, out, cache)
    assert root == [sys.executable, str(bench.BUILD_PY), *build_args]
    user = bench.build_argv(recipe, out, cache, account=account)
    assert user[:4] == ["runuser", "-u", "xenlive-bench", "--"]
    assert user[-len(build_args) - 2 :] == ["/usr/bin/python3.11", str(bench.BUILD_PY), *build_args]
    assert f"HOME={tmp_path / 'home'}" in user and "USER=xenlive-bench" in user

    def cannot(account: Any) -> Any:
        raise RuntimeError("xenlive-bench can run neither python nor python3.11")

    monkeypatch.setattr(asuser, "python_for", cannot)
    with pytest.raises(bench.BenchError, match="cannot run xenlive as xenlive-bench: xenlive-bench can run neither"):
        bench.build_argv(recipe, out, cache, account=account)


def test_one_run_of_the_demo_has_the_account_build_it_cold_in_an_empty_cache_of_its_own_then_again(
    monkeypatch: Any, tmp_path: Path
) -> None:
    fake = FakeRun(monkeypatch, tmp_path)
    res = bench.measure(bench.parse_args(["--out", str(tmp_path / "out"), "--skip-smoke"]))
    root_cold, user_cold, user_again = fake.builds[0], *(b for b in fake.builds if b.account is not None)
    assert root_cold.account is None and root_cold.cold
    assert [b.account for b in fake.builds].count("xenlive-bench") == 2
    assert (user_cold.recipe, user_cold.out, user_cold.cold) == ("recipes/xen-demo.yaml", "user", True)
    assert (user_again.cache, user_again.out, user_again.cold) == (user_cold.cache, "user", False)
    # The account's own cache, under its home (not root's, nor another's), removed afterwards.
    assert user_cold.cache is not None and user_cold.cache.parent == fake.home / "xenlive-bench" / ".cache"
    assert user_cold.cache not in {b.cache for b in fake.builds if b.account is None}
    assert not user_cold.cache.exists()
    assert {tmp_path / "out" / "user", user_cold.cache} <= {
        path for name, path in fake.given if name == "xenlive-bench"
    }
    # After root's cold build (and its --jobs 1 one), before the other recipes that are built cold.
    order = [b.account or b.recipe for b in fake.builds]
    assert order.index("xenlive-bench") > fake.builds.index(next(b for b in fake.builds if b.out == "sequential"))
    assert order.index("xenlive-bench") < order.index("recipes/xen-demo-bookworm.yaml")
    assert res.user is not None and res.user.account == "xenlive-bench"


def test_the_user_build_follows_its_options_and_only_the_demos_cold_run_has_it(
    monkeypatch: Any, tmp_path: Path
) -> None:
    out = ["--out", str(tmp_path / "out"), "--skip-smoke", "--skip-bookworm", "--skip-sequential", "--skip-sharing"]
    args = bench.parse_args([])
    assert (args.skip_user, args.user_account) == (False, "xenlive-bench")
    fake = FakeRun(monkeypatch, tmp_path)
    res = bench.measure(bench.parse_args([*out, "--user-account", "builder"]))
    assert [b.account for b in fake.builds if b.account] == ["builder", "builder"] and res.user.account == "builder"
    for skip in (["--skip-user"], ["--skip-cold"], ["--recipe", "recipes/ci.yaml"]):
        fake = FakeRun(monkeypatch, tmp_path)
        res = bench.measure(bench.parse_args([*out, *skip]))
        assert [b for b in fake.builds if b.account] == [] and res.user is None, skip
