"""`smoke` refuses a file that is not an ISO (one line, exit 2, before QEMU starts) and sizes its machine as
`boot` does: --smp, -m and --cpu reach QEMU's command line, the manifest's machine fills in the rest."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from xenlive import cli
from xenlive.qemu import NotAnIsoError, check_iso, qemu_argv
from xenlive.smoke import SmokeOptions


def iso_image(path: Path) -> Path:
    path.write_bytes(b"\0" * 32769 + b"CD001" + b"\0" * 100)
    return path


def option(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_smoke_refuses_a_three_byte_file_in_one_line_with_exit_2(tmp_path: Path) -> None:
    small = tmp_path / "x.iso"
    small.write_bytes(b"abc")
    result = CliRunner().invoke(cli.main, ["smoke", str(small)])
    assert result.exit_code == 2
    assert (
        result.output
        == f"{small}: not an ISO 9660 image (no CD001 at byte 32769); give an ISO that xenlive build wrote\n"
    )


def test_boot_refuses_it_too(tmp_path: Path) -> None:
    text = tmp_path / "notes.iso"
    text.write_text("x" * 40000)
    result = CliRunner().invoke(cli.main, ["boot", str(text)])
    assert result.exit_code == 2 and "not an ISO 9660 image" in result.output


def test_an_iso_9660_signature_is_accepted_and_a_directory_is_not(tmp_path: Path) -> None:
    check_iso(iso_image(tmp_path / "ok.iso"))
    with pytest.raises(NotAnIsoError, match="cannot read it"):
        check_iso(tmp_path)


def test_smp_memory_and_cpu_reach_qemu_and_the_manifest_fills_in_the_rest(tmp_path: Path) -> None:
    iso = tmp_path / "x.iso"
    chosen = SmokeOptions(60, cpu="Haswell-noTSX", memory=3072, smp=4)
    argv = qemu_argv(chosen.spec(iso, accel="tcg", machine=(1536, 2), ovmf=None, qmp=None))
    assert (option(argv, "-cpu"), option(argv, "-m"), option(argv, "-smp")) == ("Haswell-noTSX", "3072", "4")
    assert "-no-reboot" in argv and option(argv, "-serial") == "stdio"  # still headless

    argv = qemu_argv(SmokeOptions(60).spec(iso, accel="tcg", machine=(1536, 2), ovmf=None, qmp=None))
    assert (option(argv, "-cpu"), option(argv, "-m"), option(argv, "-smp")) == ("qemu64,+svm,+npt", "1536", "2")


def test_the_smoke_verb_passes_smp_memory_and_cpu_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[SmokeOptions] = []
    monkeypatch.setattr(cli, "_run_smoke", lambda iso, options: seen.append(options))
    result = CliRunner().invoke(
        cli.main, ["smoke", str(iso_image(tmp_path / "x.iso")), "--smp", "4", "-m", "2048", "--cpu", "max"]
    )
    assert result.exit_code == 0, result.output
    assert (seen[0].smp, seen[0].memory, seen[0].cpu) == (4, 2048, "max")
    refused = CliRunner().invoke(cli.main, ["smoke", str(tmp_path / "x.iso"), "--smp", "0"])
    assert refused.exit_code == 2 and "--smp" in refused.output
