"""Rootless builds: what an ordinary user's host must offer (each missing piece is named with how to add it), the
namespaces and id maps the build re-enters itself in, and what `validate` and `build` say of a recipe whose image
only root can build. The builds themselves: tests/boot/test_rootless.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from xenlive import cli, userns
from xenlive.userns import Host, IdRange, find_problems, id_map_argv, is_real_root, sub_range, unshare_argv

ROOT = Path(__file__).resolve().parents[2]


def host(
    tmp_path: Path, *, sysctls: dict[str, str] | None = None, missing: tuple[str, ...] = (), subids: str = ""
) -> Host:
    """A host for the user `ada` (uid 1000): /proc/sys and /etc/subuid, /etc/subgid as given, tools on PATH but
    `missing`."""
    tmp_path.mkdir(exist_ok=True)
    proc = tmp_path / "proc"
    for name, value in (sysctls or {}).items():
        (proc / "sys" / name).parent.mkdir(parents=True, exist_ok=True)
        (proc / "sys" / name).write_text(value + "\n")
    (tmp_path / "subuid").write_text(subids)
    (tmp_path / "subgid").write_text(subids)
    return Host(
        name="ada",
        uid=1000,
        gid=1000,
        which=lambda tool: None if tool in missing else f"/usr/bin/{tool}",
        proc=proc,
        subuid=tmp_path / "subuid",
        subgid=tmp_path / "subgid",
    )


READY = "ada:100000:65536\n"


def test_a_host_with_user_namespaces_uidmap_and_subordinate_ids_is_ready(tmp_path: Path) -> None:
    sysctls = {"kernel/unprivileged_userns_clone": "1", "user/max_user_namespaces": "15000"}
    assert find_problems(host(tmp_path, sysctls=sysctls, subids=READY)) == []


def test_user_namespaces_turned_off_name_the_sysctl(tmp_path: Path) -> None:
    problems = find_problems(host(tmp_path, sysctls={"kernel/unprivileged_userns_clone": "0"}, subids=READY))
    assert problems == ["user namespaces are off for ordinary users (sysctl kernel.unprivileged_userns_clone=1)"]
    problems = find_problems(host(tmp_path / "other", sysctls={"user/max_user_namespaces": "0"}, subids=READY))
    assert problems == ["user namespaces are off (sysctl user.max_user_namespaces=15000)"]


def test_ubuntus_apparmor_restriction_is_named(tmp_path: Path) -> None:
    problems = find_problems(
        host(tmp_path, sysctls={"kernel/apparmor_restrict_unprivileged_userns": "1"}, subids=READY)
    )
    assert len(problems) == 1
    assert "sysctl kernel.apparmor_restrict_unprivileged_userns=0" in problems[0]


def test_without_newuidmap_it_names_the_uidmap_package(tmp_path: Path) -> None:
    problems = find_problems(host(tmp_path, missing=("newuidmap", "newgidmap"), subids=READY))
    assert problems == ["newuidmap and newgidmap missing (apt-get install uidmap)"]


def test_without_subordinate_ids_it_says_how_to_add_them(tmp_path: Path) -> None:
    problems = find_problems(host(tmp_path, subids="bob:100000:65536\n"))
    assert problems == [
        f"no range of 65536 subordinate ids for ada in {tmp_path / 'subuid'} "
        "(as root: usermod --add-subuids 100000-165535 ada)",
        f"no range of 65536 subordinate ids for ada in {tmp_path / 'subgid'} "
        "(as root: usermod --add-subgids 100000-165535 ada)",
    ]


def test_a_range_too_small_for_debians_ids_does_not_count(tmp_path: Path) -> None:
    (tmp_path / "subuid").write_text("ada:100000:1000\n1000:300000:65536\n")
    assert sub_range(tmp_path / "subuid", "ada", 1000) == IdRange(300000, 65536)  # by uid, the first big enough
    (tmp_path / "subuid").write_text("ada:100000:1000\n")
    assert sub_range(tmp_path / "subuid", "ada", 1000) is None


def test_ids_map_root_to_the_user_and_the_rest_to_its_subordinate_ids() -> None:
    assert id_map_argv("newuidmap", 4242, 1000, IdRange(100000, 65536)) == [
        "newuidmap",
        "4242",
        "0",
        "1000",
        "1",
        "1",
        "100000",
        "65535",
    ]


def test_the_build_runs_in_user_mount_and_pid_namespaces_that_die_with_it() -> None:
    argv = unshare_argv(["python3", "-c", "pass"], ready_fd=7, go_fd=6)
    assert argv[: argv.index("--")] == [
        "unshare",
        "--user",
        "--mount",
        "--propagation",
        "private",
        "--pid",
        "--fork",
        "--kill-child",
    ]
    assert argv[-5:] == ["7", "6", "python3", "-c", "pass"]


def test_root_of_a_user_namespace_is_not_the_hosts_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    (tmp_path / "self").mkdir()
    (tmp_path / "self" / "uid_map").write_text("         0          0 4294967295\n")
    assert is_real_root(tmp_path)
    (tmp_path / "self" / "uid_map").write_text("         0       1000          1\n         1     100000      65535\n")
    assert not is_real_root(tmp_path)


def as_user(monkeypatch: pytest.MonkeyPatch, found: Host) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(userns, "this_host", lambda: found)


def test_a_user_build_on_a_host_without_what_it_needs_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_user(monkeypatch, host(tmp_path, missing=("newuidmap", "newgidmap"), subids=READY))
    result = CliRunner().invoke(cli.main, ["build", str(ROOT / "recipes" / "ci.yaml"), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert result.output == (
        "error: building without root needs user namespaces: newuidmap and newgidmap missing "
        "(apt-get install uidmap); or run it as root (sudo)\n"
    )
    assert not (tmp_path / "out").exists()


def test_validate_by_a_user_warns_that_diskimage_builder_needs_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_user(monkeypatch, host(tmp_path, subids=READY))
    result = CliRunner().invoke(cli.main, ["validate", str(ROOT / "recipes" / "ci-dib.yaml")])
    assert result.exit_code == 0, result.output
    warning = result.output.splitlines()[0]
    assert warning.startswith(f"warning: {ROOT / 'guest-images' / 'debian-dib.yaml'}:")
    assert ": builder: diskimage-builder needs the host's root" in warning
    assert "build this recipe as root (sudo)" in warning


def test_a_user_build_of_a_diskimage_builder_image_is_refused_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_user(monkeypatch, host(tmp_path, subids=READY))
    result = CliRunner().invoke(cli.main, ["build", str(ROOT / "recipes" / "ci-dib.yaml"), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert len(lines) == 1 and ": builder: diskimage-builder needs the host's root" in lines[0]


def test_validate_by_root_says_nothing_of_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(userns, "is_real_root", lambda proc=None: True)
    result = CliRunner().invoke(cli.main, ["validate", str(ROOT / "recipes" / "ci-dib.yaml")])
    assert result.exit_code == 0 and "warning" not in result.output
