"""QEMU command lines (exact argv), defaults from the manifest, and the choice of accelerator."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from xenlive import qemu
from xenlive.errors import ToolError, XenliveError
from xenlive.qemu import (
    DEFAULT_FORWARDS,
    OVMF_CODE,
    BootOptions,
    Firmware,
    Forward,
    QemuSpec,
    machine_size,
    ovmf_copy,
    qemu_argv,
    resolve_accel,
)

ISO = Path("/out/demo.iso")
FIRMWARE = Firmware(OVMF_CODE, Path("/tmp/vars.fd"))
BASE = ["qemu-system-x86_64", "-nodefaults"]
TCG_MACHINE = ["-accel", "tcg", "-cpu", "qemu64,+svm,+npt", "-smp", "2", "-m", "1024"]
SERIAL_ON_TERMINAL = ["-display", "none", "-serial", "mon:stdio"]
UPLINK = ["-netdev", "user,id=uplink", "-device", "virtio-net-pci,netdev=uplink"]


def test_tcg_cd_bios_boots_the_iso_as_a_cd_with_serial_on_the_terminal() -> None:
    argv = qemu_argv(QemuSpec(iso=ISO))
    assert argv == [*BASE, *TCG_MACHINE, "-cdrom", "/out/demo.iso", *SERIAL_ON_TERMINAL, *UPLINK]


def test_kvm_uses_the_host_cpu() -> None:
    argv = qemu_argv(QemuSpec(iso=ISO, accel="kvm", memory=2048, smp=4))
    assert argv == [
        *BASE,
        *("-accel", "kvm", "-cpu", "host", "-smp", "4", "-m", "2048"),
        *("-cdrom", "/out/demo.iso"),
        *SERIAL_ON_TERMINAL,
        *UPLINK,
    ]


def test_an_explicit_cpu_wins_over_the_default_for_the_accelerator() -> None:
    argv = qemu_argv(QemuSpec(iso=ISO, cpu="Haswell-noTSX"))
    assert argv[argv.index("-cpu") + 1] == "Haswell-noTSX"


def test_uefi_adds_ovmf_code_read_only_and_the_private_vars_copy() -> None:
    argv = qemu_argv(QemuSpec(iso=ISO, uefi=True, ovmf=FIRMWARE))
    assert argv == [
        *BASE,
        *("-accel", "tcg,tb-size=64", "-cpu", "qemu64,+svm,+npt", "-smp", "2", "-m", "1024"),
        *("-drive", "if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE.fd"),
        *("-drive", "if=pflash,format=raw,file=/tmp/vars.fd"),
        *("-cdrom", "/out/demo.iso"),
        *SERIAL_ON_TERMINAL,
        *UPLINK,
    ]


def test_only_uefi_under_tcg_gets_the_small_translation_buffer() -> None:
    accel = {
        (accel, uefi): qemu_argv(QemuSpec(iso=ISO, accel=accel, uefi=uefi, ovmf=FIRMWARE))[3]
        for accel in ("tcg", "kvm")
        for uefi in (False, True)
    }
    assert accel == {
        ("tcg", False): "tcg",
        ("tcg", True): "tcg,tb-size=64",
        ("kvm", False): "kvm",
        ("kvm", True): "kvm",
    }


def test_uefi_without_a_vars_copy_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="needs ovmf"):
        qemu_argv(QemuSpec(iso=ISO, uefi=True))


def test_usb_stick_attaches_the_iso_to_xhci_as_the_first_boot_device() -> None:
    argv = qemu_argv(QemuSpec(iso=ISO, usb=True))
    assert argv == [
        *BASE,
        *TCG_MACHINE,
        *("-drive", "if=none,id=stick,format=raw,file=/out/demo.iso,snapshot=on"),
        *("-device", "qemu-xhci", "-device", "usb-storage,drive=stick,bootindex=0"),
        *SERIAL_ON_TERMINAL,
        *UPLINK,
    ]


def test_usb_stick_without_snapshot_writes_to_the_image() -> None:
    argv = qemu_argv(QemuSpec(iso=ISO, usb=True, snapshot=False))
    assert "if=none,id=stick,format=raw,file=/out/demo.iso" in argv


def test_commas_in_a_drive_path_are_escaped() -> None:
    argv = qemu_argv(QemuSpec(iso=Path("/out/a,b.iso"), usb=True))
    assert "if=none,id=stick,format=raw,file=/out/a,,b.iso,snapshot=on" in argv


def test_vga_opens_a_window_and_keeps_serial_and_monitor_on_the_terminal() -> None:
    argv = qemu_argv(QemuSpec(iso=ISO, vga=True))
    assert argv == [*BASE, *TCG_MACHINE, "-cdrom", "/out/demo.iso", "-vga", "std", "-serial", "mon:stdio", *UPLINK]


def test_headless_sends_serial_to_stdout_without_monitor_and_stops_on_reboot() -> None:
    argv = qemu_argv(QemuSpec(iso=ISO, headless=True))
    assert argv == [
        *BASE,
        *TCG_MACHINE,
        *("-cdrom", "/out/demo.iso"),
        *("-display", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot"),
        *UPLINK,
    ]


def test_a_qmp_socket_lets_the_smoke_test_press_the_power_button() -> None:
    argv = qemu_argv(QemuSpec(iso=ISO, headless=True, qmp=Path("/run/x,y/qmp")))
    assert argv[argv.index("-qmp") + 1] == "unix:/run/x,,y/qmp,server=on,wait=off"
    assert "-qmp" not in qemu_argv(QemuSpec(iso=ISO, headless=True))


def test_a_serial_socket_takes_the_serial_console_for_a_client_to_type_into() -> None:
    argv = qemu_argv(QemuSpec(iso=ISO, headless=True, serial=Path("/run/a,b/serial")))
    chardev = ("-chardev", "socket,id=serial0,path=/run/a,,b/serial,server=on,wait=off")
    assert argv == [
        *BASE,
        *TCG_MACHINE,
        *("-cdrom", "/out/demo.iso"),
        *("-display", "none", *chardev, "-serial", "chardev:serial0", "-monitor", "none", "-no-reboot"),
        *UPLINK,
    ]


KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExampleExampleExampleExampl xenlive-boot"


def test_the_boots_ssh_key_reaches_dom0_as_an_smbios_oem_string_in_systemds_credential_form() -> None:
    argv = qemu_argv(QemuSpec(iso=ISO, ssh_key=KEY))
    assert argv[-2:] == ["-smbios", f"type=11,value=io.systemd.credential:ssh.authorized_keys.root={KEY}"]
    assert "-smbios" not in qemu_argv(QemuSpec(iso=ISO))
    options = BootOptions()
    spec = options.spec(ISO, accel="tcg", machine=(1024, 2), ovmf=None, ssh_key=KEY)
    assert spec.ssh_key == KEY


@pytest.mark.parametrize("key", [f"{KEY},x=y", f"command=x {KEY}", f"{KEY}\nssh-rsa AAAA", "ssh-dss AAAA"])
def test_anything_but_one_plain_public_key_is_refused_as_the_boots_key(key: str) -> None:
    with pytest.raises(ValueError, match="public key"):
        qemu_argv(QemuSpec(iso=ISO, ssh_key=key))


def test_extra_arguments_come_last() -> None:
    argv = qemu_argv(QemuSpec(iso=ISO, extra=("-device", "virtio-rng-pci")))
    assert argv[-2:] == ["-device", "virtio-rng-pci"]


def test_forwarded_ports_listen_on_loopback_only_and_reach_dom0() -> None:
    argv = qemu_argv(QemuSpec(iso=ISO, forwards=(Forward(8080, 8080), Forward(2222, 22))))
    netdev = argv[argv.index("-netdev") + 1]
    assert netdev == "user,id=uplink,hostfwd=tcp:127.0.0.1:8080-:8080,hostfwd=tcp:127.0.0.1:2222-:22"


def test_without_network_there_is_no_nic() -> None:
    assert "-netdev" not in qemu_argv(QemuSpec(iso=ISO, network=False))


@pytest.mark.parametrize(
    ("text", "expected"), [("8080:8080", Forward(8080, 8080)), ("2222:22", Forward(2222, 22)), ("80", Forward(80, 80))]
)
def test_forward_specs_parse(text: str, expected: Forward) -> None:
    assert Forward.parse(text) == expected


@pytest.mark.parametrize("text", ["web", ":22", "0:22", "8080:70000", "a:b"])
def test_bad_forward_specs_say_the_form(text: str) -> None:
    with pytest.raises(ValueError, match="forward"):
        Forward.parse(text)


def test_boot_prints_where_the_web_console_and_ssh_are() -> None:
    hints = qemu.forward_hints(qemu.DEFAULT_FORWARDS)
    assert hints[0].startswith("web console: http://127.0.0.1:8080/")
    assert hints[1].startswith("ssh into dom0: xenlive ssh")
    assert "ssh -p 2222 root@127.0.0.1" in hints[1]


def test_boot_options_take_the_isos_machine_size_where_they_say_nothing() -> None:
    machine = (1536, 3)
    spec = BootOptions().spec(ISO, accel="tcg", machine=machine, ovmf=None)
    assert spec == QemuSpec(iso=ISO, accel="tcg", memory=1536, smp=3, forwards=DEFAULT_FORWARDS)
    asked = BootOptions(memory=4096, smp=1, cpu="max", usb=True, snapshot=False, forwards=())
    spec = asked.spec(ISO, accel="kvm", machine=machine, ovmf=None)
    assert (spec.memory, spec.smp, spec.cpu, spec.usb, spec.snapshot, spec.forwards) == (
        4096,
        1,
        "max",
        True,
        False,
        (),
    )


def write_manifest(iso: Path, data: object) -> None:
    iso.with_name(iso.stem + ".manifest.json").write_text(json.dumps(data))


def test_machine_size_comes_from_the_manifest_beside_the_iso(tmp_path: Path) -> None:
    iso = tmp_path / "demo.iso"
    write_manifest(iso, {"machine": {"memory": 2048, "vcpus": 3}})
    assert machine_size(iso) == (2048, 3)


def test_machine_size_defaults_without_a_manifest(tmp_path: Path) -> None:
    assert machine_size(tmp_path / "demo.iso") == (1024, 2)


def test_a_broken_manifest_is_reported_with_its_path(tmp_path: Path) -> None:
    iso = tmp_path / "demo.iso"
    (tmp_path / "demo.manifest.json").write_text("{not json")
    with pytest.raises(XenliveError, match=r"demo\.manifest\.json"):
        machine_size(iso)


def test_a_manifest_with_a_non_integer_memory_is_rejected(tmp_path: Path) -> None:
    iso = tmp_path / "demo.iso"
    write_manifest(iso, {"machine": {"memory": "1G"}})
    with pytest.raises(XenliveError, match=r"machine\.memory"):
        machine_size(iso)


def no_probe() -> str | None:
    raise AssertionError("KVM must not be probed")


def test_tcg_is_used_without_probing_kvm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(qemu, "find_kvm_problem", no_probe)
    assert resolve_accel("tcg") == "tcg"


def test_explicit_kvm_that_does_not_work_is_an_error_naming_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(qemu, "find_kvm_problem", lambda: "cannot open /dev/kvm read-write (Permission denied)")
    with pytest.raises(XenliveError, match=r"Permission denied.*--accel tcg"):
        resolve_accel("kvm")


def test_auto_falls_back_to_tcg_and_says_why(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(qemu, "find_kvm_problem", lambda: "/proc/cpuinfo shows neither vmx nor svm")
    with caplog.at_level(logging.INFO, logger="xenlive.qemu"):
        assert resolve_accel("auto") == "tcg"
    assert "neither vmx nor svm" in caplog.text


@pytest.mark.parametrize("accel", ["auto", "kvm"])
def test_working_kvm_is_used(monkeypatch: pytest.MonkeyPatch, accel: str) -> None:
    monkeypatch.setattr(qemu, "find_kvm_problem", lambda: None)
    assert resolve_accel(accel) == "kvm"
    assert qemu.probe_kvm() is True


def test_an_unknown_accelerator_is_rejected() -> None:
    with pytest.raises(XenliveError, match="auto, kvm or tcg"):
        resolve_accel("hvf")


@pytest.fixture
def fake_ovmf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    code, vars_ = tmp_path / "OVMF_CODE.fd", tmp_path / "OVMF_VARS.fd"
    code.write_bytes(b"code")
    vars_.write_bytes(b"vars")
    (tmp_path / "demo.iso").write_bytes(b"\0" * 32769 + b"CD001")
    monkeypatch.setattr(qemu, "OVMF_PAIRS", ((code, vars_),))
    monkeypatch.setattr(qemu, "require_tools", lambda names: None)
    monkeypatch.setattr(qemu, "find_kvm_problem", lambda: "no KVM in unit tests")
    return tmp_path


def test_boot_interactive_runs_qemu_with_a_private_vars_copy_and_removes_it(
    fake_ovmf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    iso = fake_ovmf / "demo.iso"
    write_manifest(iso, {"machine": {"memory": 1536, "vcpus": 2}})
    seen: dict[str, list[str]] = {}

    def fake_run(argv: list[str]) -> int:
        [vars_arg] = [arg for arg in argv if arg.startswith("if=pflash,format=raw,file=")]
        vars_copy = Path(vars_arg.removeprefix("if=pflash,format=raw,file="))
        assert vars_copy.read_bytes() == b"vars" and vars_copy != fake_ovmf / "OVMF_VARS.fd"
        seen["argv"], seen["vars"] = argv, [str(vars_copy)]
        return 3

    monkeypatch.setattr(qemu, "_run_attached", fake_run)
    # Without dom0's SSH forwarded: no key pair for `xenlive ssh` (tests/tools/test_sshboot.py makes one).
    code = qemu.boot_interactive(iso, BootOptions(uefi=True, forwards=(Forward(8080, 8080),)))
    assert code == 3
    assert seen["argv"][seen["argv"].index("-m") + 1] == "1536"
    assert not Path(seen["vars"][0]).exists()


def test_boot_interactive_with_uefi_but_no_ovmf_names_the_package(
    fake_ovmf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(qemu, "OVMF_PAIRS", ((fake_ovmf / "missing.fd", fake_ovmf / "OVMF_VARS.fd"),))
    with pytest.raises(ToolError, match="apt-get install ovmf"):
        qemu.boot_interactive(fake_ovmf / "demo.iso", BootOptions(accel="tcg", uefi=True))


def test_uefi_takes_the_first_ovmf_installed_such_as_debian_13s_4_mib_build(tmp_path: Path) -> None:
    """Debian 13's ovmf ships only OVMF_CODE_4M.fd and OVMF_VARS_4M.fd; bookworm's ships both sizes."""
    small = (tmp_path / "OVMF_CODE.fd", tmp_path / "OVMF_VARS.fd")
    big = (tmp_path / "OVMF_CODE_4M.fd", tmp_path / "OVMF_VARS_4M.fd")
    for path in big:
        path.write_bytes(b"4M")
    with ovmf_copy(True, (small, big)) as firmware:
        assert firmware is not None and firmware.code == big[0]
        assert firmware.vars.read_bytes() == b"4M" and firmware.vars != big[1]  # a private copy
        argv = qemu_argv(QemuSpec(iso=ISO, uefi=True, ovmf=firmware))
        assert f"if=pflash,format=raw,readonly=on,file={big[0]}" in argv
    assert not firmware.vars.exists()
    with ovmf_copy(False, (small, big)) as none:
        assert none is None
