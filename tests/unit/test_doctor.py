"""`xenlive doctor`: the host check without a build. On a host missing a tool it names the tool and its Debian
package and exits 1; it reports root, KVM, memory and disk; `build` runs the same check (examine_build_host)."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from xenlive import cli, doctor
from xenlive.doctor import DISK_WANTED, GIB, Probes, examine_host
from xenlive.errors import ToolError
from xenlive.pipeline import check_build_host, examine_build_host
from xenlive.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[2]


def without(*tools: str) -> Probes:
    def which(name: str) -> str | None:
        return None if name in tools else f"/usr/bin/{name}"

    return Probes(which=which, kvm_problem=lambda: None, memory=lambda: 8 * GIB, disk=lambda path: 50 * GIB)


def test_a_host_missing_lz4_is_told_the_package_and_is_not_ready(tmp_path: Path) -> None:
    report = examine_host(load_recipe(ROOT / "recipes" / "ci.yaml"), tmp_path, without("lz4", "mcopy"))
    tools = next(f for f in report.findings if f.topic == "tools")
    assert str(tools) == "tools   MISSING  lz4 (lz4), mcopy (mtools); install with: apt-get install lz4 mtools"
    assert not report.ready
    kvm = next(f for f in report.findings if f.topic == "kvm")
    assert kvm.ok and str(kvm) == "kvm     ok       usable: boot and smoke use it"


def test_without_root_kvm_or_disk_it_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    probes = Probes(
        which=lambda name: f"/usr/bin/{name}",
        kvm_problem=lambda: "cannot open /dev/kvm read-write (Permission denied)",
        memory=lambda: GIB,
        disk=lambda path: DISK_WANTED // 2,
        userns=lambda: ["newuidmap missing (apt-get install uidmap)"],
    )
    report = examine_host(load_recipe(ROOT / "recipes" / "ci.yaml"), tmp_path / "cache", probes)
    lines = report.lines()
    assert (
        "root    MISSING  building without root needs user namespaces: newuidmap missing (apt-get install uidmap); "
        "or run it as root (sudo)" in lines
    )
    assert any(line.startswith("kvm     warning  not usable (cannot open /dev/kvm") for line in lines)
    assert "memory  warning  1.0 GiB available: less than a build leaves to the rest of the host" in lines
    assert f"disk    warning  2.0 GiB free for the cache {tmp_path / 'cache'}: a cold build may need 4 GiB" in lines
    assert not report.ready  # root; the warnings alone would not stop a build


def test_a_ready_host_with_warnings_only_is_ready(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    probes = Probes(which=lambda name: "/x", kvm_problem=lambda: "no", memory=lambda: 0, disk=lambda path: 0)
    assert examine_host(load_recipe(ROOT / "recipes" / "ci.yaml"), tmp_path, probes).ready


def test_build_checks_the_same_tools_as_the_doctor(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = load_recipe(ROOT / "recipes" / "xen-demo.yaml")
    assert "lz4" in examine_build_host(loaded).tools and "makefs" in examine_build_host(loaded).tools
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: None if name == "lz4" else "/x")
    with pytest.raises(ToolError, match=r"^missing tool\(s\): lz4; install with: apt-get install lz4$"):
        check_build_host(loaded)


def test_the_doctor_verb_prints_the_report_and_exits_1_when_a_build_could_not_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(doctor, "Probes", lambda: without("mmdebstrap"))
    result = CliRunner().invoke(cli.main, ["doctor", "ci", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == f"host check for a build of {ROOT / 'recipes' / 'ci.yaml'}:"
    assert "  tools   MISSING  mmdebstrap (mmdebstrap); install with: apt-get install mmdebstrap" in result.output
    assert result.output.splitlines()[-1] == "not ready to build: install or fix what is MISSING"


def test_an_ordinary_user_builds_in_a_user_namespace_but_not_a_diskimage_builder_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    probes = Probes(which=lambda name: "/x", kvm_problem=lambda: None, memory=lambda: 8 * GIB, disk=lambda p: 9 * GIB)
    report = examine_host(load_recipe(ROOT / "recipes" / "ci.yaml"), tmp_path, dataclasses.replace(probes, userns=list))
    assert "root    ok       no: builds as root of a user namespace (user namespaces, uidmap, subordinate ids)" in (
        report.lines()
    )
    assert report.ready
    report = examine_host(
        load_recipe(ROOT / "recipes" / "ci-dib.yaml"), tmp_path, dataclasses.replace(probes, userns=list)
    )
    builder = [line for line in report.lines() if line.startswith("builder")]
    assert len(builder) == 1 and "diskimage-builder needs the host's root" in builder[0]
    assert not report.ready
