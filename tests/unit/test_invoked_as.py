"""The commands xenlive prints use the name it was run by: `xenlive ...` as the installed console script,
`./build.py ...` from a checkout."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from xenlive import cli, pipeline

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("info_name", "argv0", "expected"),
    [
        ("xenlive", "/home/u/.local/bin/xenlive", "xenlive"),
        ("build.py", "./build.py", "./build.py"),
        ("build.py", "build.py", "./build.py"),  # python3 build.py
        ("build.py", "/src/xenlive/build.py", "/src/xenlive/build.py"),
        ("python -m xenlive.cli", "/src/xenlive/xenlive/cli.py", "python -m xenlive.cli"),
    ],
)
def test_the_name_printed_is_the_one_the_user_ran(info_name: str, argv0: str, expected: str) -> None:
    assert cli.command_name(info_name, argv0) == expected


@pytest.mark.parametrize(
    ("prog_name", "argv0", "expected"),
    [("xenlive", "/usr/bin/xenlive", "xenlive boot"), ("build.py", "./build.py", "./build.py boot")],
)
def test_build_says_how_to_boot_its_iso_in_that_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prog_name: str, argv0: str, expected: str
) -> None:
    iso = tmp_path / "xenlive-ci.iso"
    iso.write_bytes(b"iso")
    result = SimpleNamespace(iso=iso, manifest=tmp_path / "xenlive-ci.manifest.json", left_out=[])
    monkeypatch.setattr(pipeline, "build_iso", lambda loaded, options: result)
    monkeypatch.setattr(sys, "argv", [argv0])
    out = CliRunner().invoke(cli.main, ["build", str(ROOT / "recipes" / "ci.yaml")], prog_name=prog_name)
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[-1] == f"boot it with: {expected} {iso}"
