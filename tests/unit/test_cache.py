"""Stage keys and cache entries: stable keys, explained rebuilds, nothing half-written."""

from __future__ import annotations

import errno
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from xenlive.cache import MANIFEST, Cache, StageInputs, check_entry, explain_change
from xenlive.context import BuildContext
from xenlive.errors import BuildError, ToolError
from xenlive.fsutil import digest_tree
from xenlive.stages import StageRunner


def inputs(settings: dict[str, object] | None = None, files: dict[str, dict[str, str]] | None = None) -> StageInputs:
    return StageInputs(
        stage="demo",
        version=1,
        settings=settings or {"suite": "bookworm", "packages": ["a", "b"]},
        files=files or {},
        upstream={},
    )


def test_key_is_stable_and_ignores_mapping_order() -> None:
    a = StageInputs("demo", 1, {"x": 1, "y": [1, 2]}, {}, {"up": "k"})
    b = StageInputs("demo", 1, {"y": [1, 2], "x": 1}, {}, {"up": "k"})
    assert a.key == b.key


def test_key_changes_with_any_input() -> None:
    base = inputs()
    assert inputs({"suite": "trixie", "packages": ["a", "b"]}).key != base.key
    assert StageInputs("demo", 2, base.settings, {}, {}).key != base.key
    assert StageInputs("demo", 1, base.settings, {}, {"dom0": "x"}).key != base.key


def test_digest_tree_sees_content_mode_and_symlinks_not_mtime(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    script = tmp_path / "etc" / "run"
    script.write_text("echo hi\n")
    (tmp_path / "link").symlink_to("etc/run")
    first = digest_tree(tmp_path)
    assert set(first) == {"etc/run", "link"}
    script.touch()
    assert digest_tree(tmp_path) == first
    script.chmod(0o755)
    assert digest_tree(tmp_path) != first
    script.write_text("echo bye\n")
    assert digest_tree(tmp_path)["etc/run"] != first["etc/run"]


def test_explain_change_names_the_changed_file_and_setting() -> None:
    old = inputs(files={"overlay": {"etc/motd": "1", "etc/issue": "2"}}).as_json()
    new = inputs({"suite": "trixie", "packages": ["a", "b"]}, {"overlay": {"etc/motd": "9", "etc/issue": "2"}})
    why = explain_change(old, new.as_json())
    assert "setting 'suite' changed" in why
    assert "overlay: etc/motd" in why
    assert "etc/issue" not in why
    assert explain_change(None, new.as_json()) == "no cached entry for this stage"


def test_successful_stage_becomes_an_entry(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    stage = inputs()
    assert cache.lookup(stage) is None
    with cache.building(stage) as work:
        (work / "out.bin").write_text("data")
    entry = cache.lookup(stage)
    assert entry is not None and (entry / "out.bin").read_text() == "data"
    assert cache.previous_inputs("demo") == stage.as_json()
    assert list(cache.tmp.iterdir()) == []


def test_failed_stage_leaves_no_entry_and_no_temporary_files(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    stage = inputs()
    with pytest.raises(RuntimeError), cache.building(stage) as work:
        (work / "half.bin").write_text("partial")
        raise RuntimeError("tool failed")
    assert cache.lookup(stage) is None
    assert list(cache.tmp.iterdir()) == []


def test_sweep_removes_leftovers_of_a_killed_build(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    leftover = cache.tmp / "dom0-rootfs-abc" / "tree" / "etc"
    leftover.mkdir(parents=True)
    (leftover / "passwd").write_text("root:x:0:0\n")
    cache.sweep()
    assert list(cache.tmp.iterdir()) == []


# --- faults: damaged entries, a full disk (concurrent builds: tests/tools/test_cache_concurrency.py) ---


def build_demo(cache: Cache, stage: StageInputs, content: str = "data") -> Path:
    with cache.building(stage) as work:
        (work / "out.bin").write_text(content)
        (work / "sub").mkdir()
        (work / "sub" / "more.txt").write_text("more\n")
    return cache.entry(stage)


def test_truncated_file_is_reported_and_the_entry_removed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = Cache(tmp_path)
    entry = build_demo(cache, inputs())
    (entry / "out.bin").write_text("da")
    assert cache.lookup(inputs()) is None
    warning = next(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert "stage demo" in warning and "out.bin: 2 bytes, the manifest says 4" in warning
    assert "\n" not in warning
    assert not entry.exists()


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda e: (e / "out.bin").write_text("DATA"), "out.bin: content differs from its sha256"),
        (lambda e: (e / "sub" / "more.txt").unlink(), "sub/more.txt: missing"),
        (lambda e: (e / "stray").write_text("x"), "stray: not in the manifest"),
        (
            lambda e: (e / MANIFEST).write_text((e / MANIFEST).read_text().replace('"bookworm"', '"trixie"')),
            "manifest.json: does not match the stage's key",
        ),
        (lambda e: (e / MANIFEST).write_text("{"), "manifest.json: unreadable"),
    ],
)
def test_each_kind_of_damage_is_named(tmp_path: Path, damage: Callable[[Path], object], expected: str) -> None:
    cache = Cache(tmp_path)
    entry = build_demo(cache, inputs())
    assert check_entry(entry, inputs()) is None
    damage(entry)
    problem = check_entry(entry, inputs())
    assert problem is not None and problem.startswith(expected)


def test_same_size_tampering_is_caught_after_the_digest_was_trusted(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    entry = build_demo(cache, inputs())
    time.sleep(0.1)  # past RACY_NS: the next check records digests it will trust later
    assert check_entry(entry, inputs()) is None
    assert check_entry(entry, inputs()) is None
    (entry / "out.bin").write_text("DATA")
    assert check_entry(entry, inputs()) == "out.bin: content differs from its sha256 in the manifest"


def stage_runner(root: Path) -> StageRunner:
    return StageRunner(Cache(root), BuildContext())


def test_damaged_entry_is_rebuilt_by_the_stage(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    runner = stage_runner(tmp_path)
    builds = []

    def build(work: Path) -> dict[str, object]:
        builds.append(work)
        (work / "out.bin").write_text("data")
        return {"n": len(builds)}

    first = runner.run(inputs(), "demo stage", build)
    (first.path / "out.bin").write_bytes(b"")
    second = stage_runner(tmp_path).run(inputs(), "demo stage", build)
    assert not second.cached and len(builds) == 2
    assert (second.path / "out.bin").read_text() == "data"
    assert any("cached entry" in r.getMessage() and "out.bin: 0 bytes" in r.getMessage() for r in caplog.records)
    third = stage_runner(tmp_path).run(inputs(), "demo stage", build)
    assert third.cached and third.info == {"n": 2}


def test_sweep_leaves_the_work_dir_of_a_running_build(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    with cache.building(inputs()) as work:
        (work / "out.bin").write_text("data")
        Cache(tmp_path).sweep()
        assert (work / "out.bin").read_text() == "data"
    assert cache.lookup(inputs()) is not None


def test_python_enospc_becomes_one_line_naming_stage_and_directory(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    with pytest.raises(BuildError) as failure, cache.building(inputs()) as work:
        (work / "out.bin").write_bytes(b"x" * 3 * 2**20)
        raise OSError(errno.ENOSPC, "No space left on device", str(work / "out.bin"))
    message = str(failure.value)
    assert message.startswith(f"stage demo: no space left on device in {cache.tmp} (needs about 3 MiB, ")
    assert message.endswith("free some space and rerun)") and "\n" not in message
    assert cache.lookup(inputs()) is None and list(cache.tmp.iterdir()) == []


def test_tool_failure_is_a_full_disk_only_when_it_says_so(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    with pytest.raises(BuildError, match="stage demo: no space left on device"), cache.building(inputs()):
        raise ToolError("mksquashfs failed with exit code 1: Write failed because No space left on device")
    with pytest.raises(ToolError, match="exit code 2"), cache.building(inputs()):
        raise ToolError("mmdebstrap failed with exit code 2")


def entry_ages(cache: Cache, ages: dict[str, float], now: float) -> None:
    for e in cache.entries():
        os.utime(e.path, (now - ages[e.key], now - ages[e.key]))


def test_prune_by_age_and_by_size_least_recently_used_first(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    stages = [inputs({"n": i}) for i in range(3)]
    for i, stage in enumerate(stages):
        build_demo(cache, stage, "x" * (i + 1) * 10000)
    cache.close()
    now = time.time()
    entry_ages(cache, {stages[0].key: 10 * 86400, stages[1].key: 3600, stages[2].key: 60}, now)
    result = cache.prune(older_than=86400, now=now)
    assert [e.key for e in result.removed] == [stages[0].key]
    assert not cache.lock_file("demo", stages[0].key).exists()
    sizes = {e.key: e.size for e in cache.entries()}
    result = cache.prune(max_size=sizes[stages[2].key])
    assert [e.key for e in result.removed] == [stages[1].key]
    assert [e.key for e in cache.entries()] == [stages[2].key]


def test_prune_never_removes_an_entry_a_running_build_uses(tmp_path: Path) -> None:
    building = Cache(tmp_path)
    build_demo(building, inputs())  # `building` holds it until close()
    result = Cache(tmp_path).prune(everything=True)
    assert result.removed == [] and [e.key for e in result.busy] == [inputs().key]
    building.close()
    assert [e.key for e in Cache(tmp_path).prune(everything=True).removed] == [inputs().key]
    assert Cache(tmp_path).entries() == []


def test_verify_hashes_every_entry_and_names_the_damaged_ones(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    good, bad = inputs({"n": 1}), inputs({"n": 2})
    build_demo(cache, good)
    (build_demo(cache, bad) / "sub" / "more.txt").write_text("MORE\n")
    assert [(e.key, problem) for e, problem in cache.verify()] == [
        (bad.key, "sub/more.txt: content differs from its sha256 in the manifest")
    ]


def test_digest_tree_names_a_device_node_without_reading_it(tmp_path: Path) -> None:
    """An extracted image holds /dev/console and the like: reading one would block (`build.py diff`)."""
    os.mknod(tmp_path / "console", 0o600 | stat.S_IFCHR, os.makedev(5, 1))
    (tmp_path / "file").write_text("x")
    digests = digest_tree(tmp_path)
    assert digests["console"] == "special:20000:5,1"
    assert digests["file"].startswith("-:")


def test_prune_by_age_also_removes_the_debian_packages_no_build_used_since(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    pool = cache.debs / "deb.debian.org" / "debian" / "pool" / "main"
    pool.mkdir(parents=True)
    for name, age_days in (("old.deb", 40), ("recent.deb", 1)):
        (pool / name).write_bytes(b"!<arch>\n")
        (pool / f"{name}.sha256").write_text("0" * 64 + "\n")
        then = time.time() - age_days * 86400
        os.utime(pool / name, (then, then))
    assert cache.package_files()[0] == 4
    result = cache.prune(older_than=30 * 86400)
    assert [(e.stage, e.key) for e in result.removed] == [("debs", "1 files")]
    assert sorted(p.name for p in pool.iterdir()) == ["recent.deb", "recent.deb.sha256"]
    cache.prune(everything=True)
    assert not cache.debs.exists()


def test_a_build_uses_only_a_cache_of_its_own_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Root never takes entries a user wrote (nor a user another's): a cache that belongs to someone else is one
    line naming it, before any stage."""
    cache = Cache(tmp_path / "cache")
    cache.require_own()  # none yet: the build makes it, as its own
    (tmp_path / "cache").mkdir()
    cache.require_own()
    monkeypatch.setattr(os, "geteuid", lambda: (tmp_path / "cache").stat().st_uid + 1000)
    with pytest.raises(ToolError, match=r"the cache .*/cache belongs to uid \d+, not to this build's user"):
        cache.require_own()
