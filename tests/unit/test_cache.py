"""Stage keys and cache entries: stable keys, explained rebuilds, nothing half-written."""

from __future__ import annotations

from pathlib import Path

import pytest

from xenlive.cache import Cache, StageInputs, digest_tree, explain_change


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
