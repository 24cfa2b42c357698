"""QEMU: the argv for booting an ISO (a pure function), the KVM probe, and the one place QEMU processes run.

`qemu_argv(spec)` only builds a list; `running_qemu()` starts a background QEMU and always stops it;
`boot_interactive()` runs QEMU attached to the terminal for `build.py boot`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from xenlive.contract import CONTRACT
from xenlive.errors import XenliveError
from xenlive.manifest import DEFAULT_MEMORY, DEFAULT_VCPUS, MachineRecord, find_manifest
from xenlive.run import require_file, require_tools, terminate_as_interrupt
from xenlive.sshboot import boot_session

log = logging.getLogger(__name__)

Accel = Literal["kvm", "tcg"]
AccelChoice = Literal["auto", "kvm", "tcg"]  # what the user asks for: auto probes KVM and falls back to TCG

QEMU = "qemu-system-x86_64"
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS.fd")
# Debian 13's ovmf ships only the 4 MiB build (bookworm's ships both): the first pair present is used.
OVMF_PAIRS = (
    (OVMF_CODE, OVMF_VARS),
    (Path("/usr/share/OVMF/OVMF_CODE_4M.fd"), Path("/usr/share/OVMF/OVMF_VARS_4M.fd")),
)


@dataclass(frozen=True)
class Firmware:
    """UEFI's firmware for one run: OVMF's code, and a private, writable copy of its variables."""

    code: Path
    vars: Path


# Under TCG, this CPU model gives Xen SVM with nested paging (measured with Xen 4.17 and a Debian 6.1 PV dom0:
# Xen reports "HVM: SVM enabled" and HAP), so PVH and HVM guests work too. Haswell-noTSX, plain qemu64 and
# Nehalem boot a PV dom0 but give no HVM or PVH (TCG has no VMX); `max` crashes the PV dom0 early (#PF) and
# EPYC makes Xen panic (GPF) 2.4 s into its boot.
TCG_CPU = "qemu64,+svm,+npt"
KVM_CPU = "host"

# Under TCG, a UEFI boot gets a translation buffer of this size (MiB), a BIOS boot QEMU's default (1 GiB in
# QEMU 7.2 and 10.0, never filled in a boot, so never flushed). OVMF leaves translations of its code on pages
# Xen reuses after the firmware hands over (CPU 1's stack among them); while one is held, every write to that
# page takes TCG's self-modifying-code path. A small buffer fills and is flushed within seconds, which drops
# them. Measured back to back on the demo ISO (BENCHMARKS.md, "UEFI CD against BIOS CD under TCG"): the first
# guest ready at 1.06-1.14x the BIOS boot's time against 1.36-1.92x without, with QEMU 7.2 and 10.0 alike.
# Not for BIOS: there the flushes bring nothing and made the later guests' boots ~25% slower.
UEFI_TCG_TB_SIZE = 64

# What dom0 accepts as the boot's key (the same form in xenlive-boot): TYPE BASE64 [COMMENT], one line.
SSH_PUBLIC_KEY = re.compile(
    r"(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/]+={0,2}( [A-Za-z0-9@._-]+)?"
)

# Seconds a stopped QEMU gets between SIGTERM and SIGKILL.
STOP_GRACE = 5.0
# Seconds the KVM probe waits for SeaBIOS to print its banner.
KVM_PROBE_SECONDS = 4.0

# An ISO 9660 image has its first volume descriptor at 32768 (sector 16): a type byte, then "CD001".
ISO_SIGNATURE = b"CD001"
ISO_SIGNATURE_OFFSET = 32769


class NotAnIsoError(XenliveError):
    """The file given to boot or smoke is not an ISO 9660 image: wrong input, exit 2."""

    exit_code = 2


def check_iso(path: Path) -> None:
    """Refuse a file that is not an ISO 9660 image (a hybrid ISO written to a stick still is one), before QEMU
    spends minutes failing to boot it."""
    try:
        with path.open("rb") as medium:
            medium.seek(ISO_SIGNATURE_OFFSET)
            signature = medium.read(len(ISO_SIGNATURE))
    except OSError as exc:
        raise NotAnIsoError(f"{path}: cannot read it ({exc.strerror})") from exc
    if signature != ISO_SIGNATURE:
        raise NotAnIsoError(
            f"{path}: not an ISO 9660 image (no {ISO_SIGNATURE.decode()} at byte {ISO_SIGNATURE_OFFSET}); "
            "give an ISO that xenlive build wrote"
        )


@dataclass(frozen=True)
class Forward:
    """A TCP port of the host (on 127.0.0.1) forwarded to a port of dom0."""

    host: int
    guest: int

    @classmethod
    def parse(cls, text: str) -> Forward:
        """'HOST:GUEST' or 'PORT' (the same on both sides)."""
        host, _, guest = text.partition(":")
        try:
            ports = int(host), int(guest or host)
        except ValueError:
            raise ValueError(f"forward {text!r}: must be HOST_PORT:DOM0_PORT, e.g. 8080:8080") from None
        if not all(0 < port < 65536 for port in ports):
            raise ValueError(f"forward {text!r}: ports are 1 to 65535")
        return cls(*ports)


# What `boot` forwards unless told otherwise: dom0's web console and SSH.
DEFAULT_FORWARDS = (Forward(8080, 8080), Forward(2222, 22))


@dataclass(frozen=True)
class QemuSpec:
    """One QEMU machine booting an ISO. `cpu=None` means the best model for `accel`."""

    iso: Path
    accel: Accel = "tcg"
    cpu: str | None = None
    memory: int = DEFAULT_MEMORY
    smp: int = DEFAULT_VCPUS
    vga: bool = False
    uefi: bool = False
    usb: bool = False
    snapshot: bool = True
    headless: bool = False  # serial console to stdout (a pipe), no monitor, no stdin, exit on reset
    ovmf: Firmware | None = None  # required with uefi
    network: bool = True  # one NIC for dom0's uplink, on QEMU's user-mode network (NAT, DHCP, DNS)
    forwards: tuple[Forward, ...] = ()  # host ports forwarded into dom0 (with network)
    qmp: Path | None = None  # a QMP socket (QEMU's machine protocol), to press the power button from outside
    serial: Path | None = None  # headless: the serial console on this Unix socket (a client types into it)
    ssh_key: str | None = None  # an OpenSSH public key dom0 adds to root's authorized_keys (see _credential_args)
    extra: tuple[str, ...] = ()


@dataclass(frozen=True)
class BootOptions:
    """How `boot` was asked to boot an ISO (the CLI makes it once). None: the machine size of the manifest
    beside the ISO, the best CPU model for the accelerator."""

    accel: AccelChoice = "auto"
    cpu: str | None = None
    memory: int | None = None  # MiB
    smp: int | None = None
    vga: bool = False
    uefi: bool = False
    usb: bool = False
    snapshot: bool = True
    forwards: tuple[Forward, ...] = DEFAULT_FORWARDS

    def spec(
        self,
        iso: Path,
        *,
        accel: Accel,
        machine: tuple[int, int],
        ovmf: Firmware | None,
        ssh_key: str | None = None,
    ) -> QemuSpec:
        """The machine these options ask for, once the accelerator is known: `machine` is the (memory, vCPUs)
        the ISO was built for, taken where the options say nothing."""
        memory, smp = machine
        return QemuSpec(
            iso=iso,
            accel=accel,
            cpu=self.cpu,
            memory=self.memory or memory,
            smp=self.smp or smp,
            vga=self.vga,
            uefi=self.uefi,
            usb=self.usb,
            snapshot=self.snapshot,
            ovmf=ovmf,
            forwards=self.forwards,
            ssh_key=ssh_key,
        )


def default_cpu(accel: Accel) -> str:
    return KVM_CPU if accel == "kvm" else TCG_CPU


def qemu_argv(spec: QemuSpec) -> list[str]:
    """The full QEMU command line for `spec`. Pure: touches no file."""
    return [
        QEMU,
        "-nodefaults",
        *("-accel", _accel_option(spec)),
        *("-cpu", spec.cpu or default_cpu(spec.accel)),
        *("-smp", str(spec.smp)),
        *("-m", str(spec.memory)),
        *_firmware_args(spec),
        *_medium_args(spec),
        *_console_args(spec),
        *_network_args(spec),
        *_credential_args(spec),
        *spec.extra,
    ]


def _accel_option(spec: QemuSpec) -> str:
    if spec.accel == "tcg" and spec.uefi:
        return f"tcg,tb-size={UEFI_TCG_TB_SIZE}"  # see UEFI_TCG_TB_SIZE
    return spec.accel


def _drive_file(path: Path) -> str:
    """A path as a -drive `file=` value: commas are doubled so they do not split the option list."""
    return os.fspath(path).replace(",", ",,")


def _firmware_args(spec: QemuSpec) -> list[str]:
    if not spec.uefi:
        return []  # SeaBIOS, QEMU's default
    if spec.ovmf is None:
        raise ValueError("QemuSpec.uefi needs ovmf: OVMF's code and a writable copy of its variables")
    return [
        *("-drive", f"if=pflash,format=raw,readonly=on,file={_drive_file(spec.ovmf.code)}"),
        *("-drive", f"if=pflash,format=raw,file={_drive_file(spec.ovmf.vars)}"),
    ]


def _medium_args(spec: QemuSpec) -> list[str]:
    if not spec.usb:
        return ["-cdrom", os.fspath(spec.iso)]  # a CD is read-only: snapshot changes nothing
    snapshot = ",snapshot=on" if spec.snapshot else ""
    return [
        *("-drive", f"if=none,id=stick,format=raw,file={_drive_file(spec.iso)}{snapshot}"),
        *("-device", "qemu-xhci"),
        *("-device", "usb-storage,drive=stick,bootindex=0"),
    ]


def _network_args(spec: QemuSpec) -> list[str]:
    if not spec.network:
        return []
    netdev = "user,id=uplink" + "".join(f",hostfwd=tcp:127.0.0.1:{f.host}-:{f.guest}" for f in spec.forwards)
    return ["-netdev", netdev, "-device", "virtio-net-pci,netdev=uplink"]


# The per-boot public key reaches dom0 as an SMBIOS OEM string (type 11) in systemd's credential form,
# `io.systemd.credential:NAME=VALUE`, as mkosi and systemd's own tools hand credentials to a VM.
# Measured (2026-12-08, the CI ISO: Xen 4.17, Debian's 6.1 kernel as PV dom0, QEMU TCG, SeaBIOS), both ways
# QEMU offers reach a PV dom0: the kernel found the SMBIOS table ("SMBIOS 2.8 present": a PV dom0 sees the
# legacy BIOS area where SeaBIOS puts the entry point) and serves it as /sys/firmware/dmi/tables/DMI, with the
# OEM string in it; and after `modprobe qemu_fw_cfg`, `-fw_cfg name=opt/...` showed under
# /sys/firmware/qemu_fw_cfg/by_name (dom0 has the I/O ports and ACPI's fw_cfg device). SMBIOS it is: dom0
# reads a file the kernel already has with shell builtins, where fw_cfg needs its module loaded first (a
# process start, slow in a PV dom0 under TCG). Under UEFI (OVMF hands the SMBIOS table over in EFI's
# configuration table) it was not measured.
def _credential_args(spec: QemuSpec) -> list[str]:
    if spec.ssh_key is None:
        return []
    if not SSH_PUBLIC_KEY.fullmatch(spec.ssh_key):
        raise ValueError(f"not one OpenSSH public key without options: {spec.ssh_key[:40]!r}")
    value = f"io.systemd.credential:{CONTRACT.SSH_CREDENTIAL}={spec.ssh_key}".replace(",", ",,")
    return ["-smbios", f"type=11,value={value}"]


def _console_args(spec: QemuSpec) -> list[str]:
    vga = ["-vga", "std"] if spec.vga else []
    qmp = ["-qmp", f"unix:{_drive_file(spec.qmp)},server=on,wait=off"] if spec.qmp is not None else []
    if spec.headless and spec.serial is not None:
        socket_args = ["-chardev", f"socket,id=serial0,path={_drive_file(spec.serial)},server=on,wait=off"]
        serial_args = [*socket_args, "-serial", "chardev:serial0"]
        return [*vga, "-display", "none", *serial_args, "-monitor", "none", *qmp, "-no-reboot"]
    if spec.headless:
        return [*vga, "-display", "none", "-serial", "stdio", "-monitor", "none", *qmp, "-no-reboot"]
    if spec.vga:
        return [*vga, "-serial", "mon:stdio"]  # a window, plus serial and monitor on the terminal
    return ["-display", "none", "-serial", "mon:stdio"]


# --- defaults from the manifest beside the ISO ---------------------------------------------------


def machine_size(iso: Path) -> tuple[int, int]:
    """(memory MiB, vCPUs) the ISO was built for: the `machine` of the manifest beside it, else 1024 and 2."""
    manifest = find_manifest(iso)
    machine = manifest.machine if manifest is not None else MachineRecord()
    return machine.memory, machine.vcpus


# --- accelerator ---------------------------------------------------------------------------------


def find_kvm_problem() -> str | None:
    """Why KVM cannot run a guest here, or None when a real QEMU run under KVM reached SeaBIOS."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError as exc:
        return f"cannot open /dev/kvm read-write ({exc.strerror})"
    os.close(fd)
    if not _cpu_flags() & {"vmx", "svm"}:
        return "/proc/cpuinfo shows neither vmx nor svm (nested virtualisation is off or broken)"
    if shutil.which(QEMU) is None:
        return f"{QEMU} not found"
    return _seabios_problem_under_kvm()


def probe_kvm() -> bool:
    """True only when KVM really works: a few-second QEMU run under KVM gets SeaBIOS to start."""
    problem = find_kvm_problem()
    if problem is not None:
        log.debug("KVM probe: %s", problem)
    return problem is None


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            flags.update(value.split())
    return flags


def _seabios_problem_under_kvm() -> str | None:
    with tempfile.TemporaryDirectory(prefix="xenlive-kvm-probe-") as tmp:
        debugcon = Path(tmp) / "debugcon.log"
        argv = [
            *(QEMU, "-nodefaults", "-accel", "kvm", "-cpu", KVM_CPU, "-m", "64"),
            *("-display", "none", "-monitor", "none", "-no-reboot"),
            *("-chardev", f"file,id=dbg,path={debugcon}", "-device", "isa-debugcon,iobase=0x402,chardev=dbg"),
        ]
        try:
            with running_qemu(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, grace=1.0) as proc:
                return _wait_for_seabios(proc, debugcon)
        except XenliveError as exc:
            return str(exc)


def _wait_for_seabios(proc: subprocess.Popen[bytes], debugcon: Path) -> str | None:
    deadline = time.monotonic() + KVM_PROBE_SECONDS
    while time.monotonic() < deadline:
        if b"SeaBIOS" in _read_bytes(debugcon):
            return None
        if proc.poll() is not None:
            return f"QEMU under KVM exited with code {proc.returncode} before SeaBIOS started"
        time.sleep(0.1)
    return f"QEMU under KVM did not start SeaBIOS within {KVM_PROBE_SECONDS:.0f} s"


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def resolve_accel(accel: str) -> Accel:
    """The accelerator for the user's choice (auto, kvm, tcg): auto probes KVM and falls back to TCG, saying why."""
    if accel == "tcg":
        return "tcg"
    if accel not in ("auto", "kvm"):
        raise XenliveError(f"unknown accelerator {accel!r}: use auto, kvm or tcg")
    problem = find_kvm_problem()
    if problem is None:
        log.info("KVM works: using it")
        return "kvm"
    if accel == "kvm":
        raise XenliveError(f"KVM was asked for but does not work here: {problem}; use --accel tcg (slower) or auto")
    log.info("KVM not usable: %s; using TCG, which is slower", problem)
    return "tcg"


# --- running QEMU --------------------------------------------------------------------------------


@contextmanager
def running_qemu(
    argv: Sequence[str],
    *,
    stdout: int | IO[bytes],
    stderr: int | IO[bytes] | None = None,
    grace: float = STOP_GRACE,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start QEMU in the background (no stdin, own session) and stop it on leaving, whatever happens.

    Stopping sends SIGTERM, then SIGKILL after `grace` seconds.
    """
    log.debug("run: %s", shlex.join(argv))
    try:
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, start_new_session=True
        )
    except OSError as exc:
        raise XenliveError(f"cannot start {argv[0]}: {exc}") from exc
    try:
        yield proc
    finally:
        stop_process(proc, grace)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def stop_process(proc: subprocess.Popen[bytes], grace: float = STOP_GRACE) -> None:
    """SIGTERM the process group, SIGKILL it after `grace` seconds; always reap the process."""
    if proc.poll() is not None:
        return
    _signal_group(proc, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        log.debug("pid %d ignored SIGTERM for %g s: killing it", proc.pid, grace)
        _signal_group(proc, signal.SIGKILL)
        proc.wait()


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)  # start_new_session made QEMU its group leader


def press_power_button(qmp: Path, timeout: float = 10.0) -> None:
    """Press the machine's power button (an ACPI power button event, as `system_powerdown` in QEMU's monitor)
    through the QMP socket of a running QEMU (QemuSpec.qmp). The machine decides what to do about it."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(os.fspath(qmp))
            replies = sock.makefile("rb")
            _qmp_reply(replies, "QMP")  # the greeting
            for command in ("qmp_capabilities", "system_powerdown"):
                sock.sendall(json.dumps({"execute": command}).encode() + b"\n")
                _qmp_reply(replies, "return")
    except (OSError, ValueError) as exc:
        raise XenliveError(f"cannot press the power button through {qmp}: {exc}") from exc


def _qmp_reply(replies: IO[bytes], key: str) -> None:
    """Read QMP messages until one holds `key` (events may come first); an error reply raises ValueError."""
    while True:
        line = replies.readline()
        if not line:
            raise ValueError("QEMU closed the QMP connection")
        message = json.loads(line)
        if "error" in message:
            raise ValueError(message["error"].get("desc", "error"))
        if key in message:
            return


@contextmanager
def ovmf_copy(uefi: bool, pairs: tuple[tuple[Path, Path], ...] | None = None) -> Iterator[Firmware | None]:
    """OVMF for one run (None without UEFI): the first of `pairs` (OVMF_PAIRS) installed, its variables copied to a
    private, writable file, removed afterwards."""
    if not uefi:
        yield None
        return
    pairs = pairs or OVMF_PAIRS
    code, variables = next(((c, v) for c, v in pairs if c.is_file() and v.is_file()), pairs[0])
    require_file(code, "ovmf")
    require_file(variables, "ovmf")
    fd, name = tempfile.mkstemp(prefix="xenlive-OVMF_VARS-", suffix=".fd")
    os.close(fd)
    copy = Path(name)
    try:
        shutil.copyfile(variables, copy)
        yield Firmware(code, copy)
    finally:
        copy.unlink(missing_ok=True)


def boot_interactive(iso: Path, options: BootOptions) -> int:
    """Boot `iso` with its serial console on this terminal; QEMU's exit code. SIGTERM and SIGHUP (and SIGINT sent
    to us: on the terminal, Ctrl-C reaches the guest) stop QEMU, the KVM probe's included. With dom0's SSH
    forwarded, the boot gets a key pair of its own, which `xenlive ssh` uses (xenlive/sshboot.py)."""
    check_iso(iso)
    require_tools([QEMU])
    machine = machine_size(iso)
    ssh_port = next((f.host for f in options.forwards if f.guest == 22), None)
    with (
        terminate_as_interrupt(),
        ovmf_copy(options.uefi) as firmware,
        boot_session(iso, ssh_port) if ssh_port is not None else nullcontext() as session,
    ):
        spec = options.spec(
            iso,
            accel=resolve_accel(options.accel),
            machine=machine,
            ovmf=firmware,
            ssh_key=session.public_key() if session is not None else None,
        )
        argv = qemu_argv(spec)
        log.info("booting: %s", shlex.join(argv))
        for line in forward_hints(options.forwards):
            log.info("%s", line)
        log.info("serial console on this terminal: quit with Ctrl-A X")
        return _run_attached(argv)


def forward_hints(forwards: tuple[Forward, ...]) -> list[str]:
    """How to reach what dom0 serves through the forwarded ports."""
    lines = []
    for forward in forwards:
        if forward.guest == 8080:
            lines.append(
                f"web console: http://127.0.0.1:{forward.host}/ (actions need the token dom0 prints on its "
                "console: 'xenlive-status: web up ... token=...')"
            )
        elif forward.guest == 22:
            lines.append(
                "ssh into dom0: xenlive ssh (a key made for this boot), or xenlive ssh GUEST [COMMAND] into a guest; "
                f"or ssh -p {forward.host} root@127.0.0.1 with a key from dom0.ssh.authorized_keys"
            )
        else:
            lines.append(f"dom0 port {forward.guest}: 127.0.0.1:{forward.host}")
    return lines


def _run_attached(argv: list[str]) -> int:
    """Run QEMU in the foreground on this terminal (xenlive.run.run closes stdin, which this needs). If we are
    interrupted, QEMU is stopped too: SIGTERM first, so that it gives the terminal its modes back."""
    try:
        proc = subprocess.Popen(argv)
    except OSError as exc:
        raise XenliveError(f"cannot start {argv[0]}: {exc}") from exc
    try:
        return proc.wait()
    except BaseException:
        stop_attached(proc)
        raise


def stop_attached(proc: subprocess.Popen[bytes], grace: float = STOP_GRACE) -> None:
    """SIGTERM a QEMU that shares our process group, SIGKILL it after `grace` seconds; always reap it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
