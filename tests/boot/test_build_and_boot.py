"""End to end: build the small CI recipe with the real tools, interrupt a build, boot the ISO headless.

These run as root (mmdebstrap needs it) and use the default stage cache ($XDG_CACHE_HOME/xenlive),
so a warm cache makes them fast. A failed boot keeps its serial log under tests/boot/artifacts/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.accounts import asuser
from tests.tools.test_wheel import install_wheel

pytestmark = pytest.mark.boot

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "xenlive"


def xenlive(
    *args: str, timeout: float = 1800, account: asuser.Account | None = None
) -> subprocess.CompletedProcess[str]:
    """`xenlive ARGS` through the real command line, as root, or as `account` (its own home and cache, no sudo)."""
    return subprocess.run(
        asuser.xenlive_argv(account, args) if account else [sys.executable, str(ROOT / "build.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def mounts_under(path: Path) -> list[str]:
    prefix = os.path.realpath(path)
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(prefix)]


def loop_devices_on(path: Path) -> list[str]:
    out = subprocess.run(
        ["losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE"], capture_output=True, text=True, check=False
    ).stdout
    return [line for line in out.splitlines() if os.path.realpath(path) in line]


def built(recipe: str, iso_name: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shipped recipe built into a directory of its own: the ISO's path."""
    out = tmp_path_factory.mktemp(f"{iso_name}-out")
    result = xenlive("build", str(ROOT / "recipes" / recipe), "-o", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    return out / f"{iso_name}.iso"


@pytest.fixture(scope="module")
def ci_iso(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built("ci.yaml", "xenlive-ci", tmp_path_factory)


def test_build_writes_iso_and_manifest(ci_iso: Path) -> None:
    manifest = json.loads(ci_iso.with_suffix(".manifest.json").read_text())
    assert manifest["iso"]["size"] == ci_iso.stat().st_size
    assert manifest["versions"]["xen"].startswith("4.20")  # trixie's, the default suite
    assert [g["name"] for g in manifest["guests"]] == ["debian"]
    assert manifest["guest_images"]["debian"]["suite"] == "trixie"
    assert {s["name"] for s in manifest["stages"]} == {"dom0-rootfs", "guest-debian", "grub-boot", "dom0-config", "iso"}
    assert "xen-hypervisor-4.20-amd64" in manifest["dom0_packages"]
    sbom = json.loads(ci_iso.with_suffix(".spdx.json").read_text())
    xen = next(p for p in sbom["packages"] if p["name"] == "xen-hypervisor-4.20-amd64")
    assert xen["externalRefs"][0]["referenceLocator"].endswith("?arch=amd64&distro=trixie")
    assert "qemu-system-xen" not in manifest["dom0_packages"]  # no HVM guest, no device model
    listing = subprocess.run(
        ["xorriso", "-indev", str(ci_iso), "-find", "/", "-type", "f"], capture_output=True, text=True, check=True
    ).stdout
    for path in (
        "/boot/xen.gz",
        "/live/vmlinuz",
        "/live/initrd.img",
        "/live/filesystem.squashfs",
        "/live/xenlive.squashfs",
        "/xenlive/images/debian.squashfs",
    ):
        assert f"'{path}'" in listing


def test_rebuild_without_changes_reuses_every_stage(ci_iso: Path) -> None:
    result = xenlive("build", str(ROOT / "recipes" / "ci.yaml"), "-o", str(ci_iso.parent))
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads(ci_iso.with_suffix(".build.json").read_text())  # how the build ran
    assert all(stage["cached"] for stage in record["stages"]), record["stages"]


def test_editing_an_overlay_file_reruns_only_config_and_iso(ci_iso: Path, tmp_path: Path) -> None:
    (tmp_path / "xenlive.project").touch()  # the project: recipes/ beside overlays/
    overlay = tmp_path / "overlays" / "motd"
    (overlay / "etc").mkdir(parents=True)
    (overlay / "etc" / "motd").write_text(f"welcome {time.time()}\n")
    recipe = tmp_path / "recipes" / "edited.yaml"
    recipe.parent.mkdir()
    recipe.write_text(f"extends: {ROOT / 'recipes' / 'ci.yaml'}\ndom0:\n  overlays: [motd]\n")
    first = xenlive("build", str(recipe), "-o", str(tmp_path / "out"))
    assert first.returncode == 0, first.stderr[-2000:]
    (overlay / "etc" / "motd").write_text("changed\n")
    second = xenlive("build", str(recipe), "-o", str(tmp_path / "out"))
    assert second.returncode == 0, second.stderr[-2000:]
    stages = json.loads((tmp_path / "out" / "xenlive-ci.build.json").read_text())["stages"]
    rerun = {s["name"]: s["reason"] for s in stages if not s["cached"]}
    assert set(rerun) == {"dom0-config", "iso"}
    assert "etc/motd" in rerun["dom0-config"]  # the build says which file made it rerun


def test_a_second_recipe_with_the_same_dom0_and_guest_image_builds_only_its_own_stages(
    ci_iso: Path, tmp_path: Path
) -> None:
    """Sharing with the real stages: a new recipe elsewhere (no commit, no checkout) with the same dom0 and guest
    image as recipes/ci.yaml reuses their entries (and GRUB's) and builds only its config layer and its ISO."""
    recipe = tmp_path / "second.yaml"
    recipe.write_text(
        f"extends: {ROOT / 'recipes' / 'ci.yaml'}\n"
        "iso:\n  name: second\n  volume_label: SECOND\n"
        "guests:\n  - {name: one, image: debian}\n  - {name: two, image: debian, type: pvh}\n"
    )
    result = xenlive("build", str(recipe), "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr[-2000:]
    stages = json.loads((tmp_path / "out" / "second.build.json").read_text())["stages"]
    assert {s["name"] for s in stages if not s["cached"]} == {"dom0-config", "iso"}, stages


def test_interrupted_build_leaves_nothing_behind_and_the_next_build_resumes(tmp_path: Path) -> None:
    # A guest image of our own, so that its stage is not cached and the build is interrupted in it.
    (tmp_path / "xenlive.project").touch()  # the project: recipes/ beside guest-images/
    images = tmp_path / "guest-images"
    shutil.copytree(ROOT / "guest-images", images, symlinks=True)
    (images / "debian" / "etc" / "xenlive-test-token").write_text(f"{time.time()}\n")
    recipe = tmp_path / "recipes" / "interrupted.yaml"
    recipe.parent.mkdir()
    recipe.write_text(
        f"extends: {ROOT / 'recipes' / 'ci.yaml'}\n"
        "iso:\n  name: interrupted\n"
        "guests:\n  - name: debian\n    image: debian\n"  # found in tmp_path/guest-images
    )
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "build.py"), "build", str(recipe), "-o", str(out)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "guest image debian" in line and "building" in line:
            break
    time.sleep(20)  # mmdebstrap is now installing packages into its chroot, with /proc, /sys, /dev mounted
    stopped = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=120)
    took = time.monotonic() - stopped
    assert proc.returncode != 0, "".join(seen) + rest
    assert took < 5, f"the build took {took:.1f} s to stop: {rest[-2000:]}"  # mmdebstrap is stopped with apt, dpkg
    assert mounts_under(CACHE) == []
    assert loop_devices_on(CACHE) == []
    assert not (CACHE / "tmp").exists() or list((CACHE / "tmp").iterdir()) == []
    assert not out.exists() or list(out.iterdir()) == []

    resumed = xenlive("build", str(recipe), "-o", str(out))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    stages = {s["name"]: s for s in json.loads((out / "interrupted.build.json").read_text())["stages"]}
    assert stages["dom0-rootfs"]["cached"]  # finished before the interruption: reused
    assert not stages["guest-debian"]["cached"]
    assert (out / "interrupted.iso").stat().st_size > 100 * 2**20


def smoke_passes(
    iso: Path, tmp_path: Path, *options: str, account: asuser.Account | None = None
) -> tuple[dict[str, ET.Element], str]:
    """Smoke-test `iso` through the command line (as `account`, if given); it must pass. The JUnit testcases
    and the serial log."""
    junit, log = tmp_path / "smoke.xml", tmp_path / "serial.log"
    args = ("smoke", str(iso), "--timeout", "900", "--junit", str(junit), "--log", str(log), *options)
    result = xenlive(*args, timeout=1200, account=account)
    if result.returncode != 0:
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(log, ARTIFACTS / f"{iso.stem}-smoke.serial.log")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    cases = {case.get("name", ""): case for case in ET.parse(junit).getroot().iter("testcase")}
    assert all(case.find("failure") is None for case in cases.values())
    return cases, log.read_text(errors="replace")


@pytest.fixture(scope="module")
def account() -> Iterator[asuser.Account]:
    """An ordinary account made for these tests: a home and a cache of its own, subordinate ids, no sudo."""
    made = asuser.ensure_account("xlt-boot")
    try:
        yield made
    finally:
        asuser.remove_account(made)


def test_an_ordinary_user_builds_roots_iso_byte_for_byte_boots_it_and_it_shuts_down_cleanly(
    ci_iso: Path, account: asuser.Account
) -> None:
    """Rootless: the account builds the CI recipe with an empty cache of its own, in user namespaces (no sudo).
    The ISO, its manifest and its SBOM are the bytes root built in this run. Then the account boots it, with the
    fast default (runit in dom0 and in the guest): the guest is ready, its network checks pass, and the power
    button shuts the guest down, then dom0 powers the machine off, and QEMU exits by itself."""
    out = account.home / "out"
    build = xenlive("build", str(ROOT / "recipes" / "ci.yaml"), "-o", str(out), account=account)
    assert build.returncode == 0, build.stderr[-3000:]
    iso = out / ci_iso.name
    assert iso.stat().st_uid == account.uid  # the user's, like everything it wrote
    for suffix in (".iso", ".manifest.json", ".spdx.json"):
        mine, roots = iso.with_suffix(suffix), ci_iso.with_suffix(suffix)
        assert mine.read_bytes() == roots.read_bytes(), (
            f"{mine.name} differs from root's; `build.py diff` on the ISOs explains how:\n"
            + xenlive("diff", "--summary", str(ci_iso), str(iso)).stdout[-3000:]
        )
    runs = account.home / "smoke"
    runs.mkdir()
    asuser.give(account, runs)
    cases, serial = smoke_passes(iso, runs, "--shutdown", account=account)
    assert {"xen", "dom0", "toolstack", "guest:debian", "network:debian", "shutdown"} <= set(cases)
    assert "- runit: enter stage: /etc/runit/2" in serial  # dom0's init
    assert "[debian] - runit: enter stage: /etc/runit/2" in serial  # the guest's
    assert "XENLIVE-READY debian" in serial  # printed inside the guest, forwarded by dom0
    assert "xenlive-status: guest debian ready" in serial
    # DHCP address, pings both ways, a ping to dom0's uplink gateway (QEMU's), which only NAT lets through,
    # and no connection from the guest to dom0's SSH or web console.
    network = re.search(r"xenlive-status: guest debian network ok addr=10\.0\.3\.10 .*uplink=(\S+) mgmt=(\S+)", serial)
    assert network and (network[1], network[2]) == ("ok", "closed"), network and network[0]
    stopping = serial.index("xenlive-status: guests stopping debian")
    stopped = serial.index("xenlive-status: guests stopped", stopping)
    # The guest shut itself down: its stage 3 on its console once dom0 asked it to. Its lines reach dom0's
    # console through the forwarder, which may print them after xenlive-boot's "guests stopped" (a trixie guest
    # is down within a second or two): whether they come before it is a race, not an outcome.
    assert re.search(r"^\[debian\] .*- runit: (enter|leave) stage: /etc/runit/3", serial[stopping:], re.M)
    assert "xenlive-status: dom0 down" in serial[stopped:]


@pytest.fixture(scope="module")
def systemd_iso(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built("ci-systemd.yaml", "xenlive-ci-systemd", tmp_path_factory)


def test_the_systemd_profile_boots_to_a_running_guest_and_shuts_down_cleanly(systemd_iso: Path, tmp_path: Path) -> None:
    """dom0.init: systemd and a guest image with init: systemd keep working: same verdicts, same shutdown. Its
    second guest is a bookworm one (runit) under the trixie dom0: ready, and its network checks pass."""
    manifest = json.loads(systemd_iso.with_suffix(".manifest.json").read_text())
    suites = {name: image["suite"] for name, image in manifest["guest_images"].items()}
    assert suites == {"debian-systemd": "trixie", "debian-bookworm": "bookworm"}
    cases, serial = smoke_passes(systemd_iso, tmp_path, "--shutdown")
    assert {"guest:debian", "network:debian", "guest:bookworm", "network:bookworm", "shutdown"} <= set(cases)
    assert "[bookworm] - runit: enter stage: /etc/runit/2" in serial
    bookworm = re.search(
        r"xenlive-status: guest bookworm network ok addr=10\.0\.3\.11 resolve=debian:ok uplink=ok", serial
    )
    assert bookworm, "the bookworm guest's network verdict"
    assert re.search(r"systemd\[1\]: systemd \d+", serial)  # dom0's init
    # The guest's init: systemd, quiet like every guest's boot, shows none of runit's stage lines.
    assert "XENLIVE-READY debian" in serial and "[debian] - runit:" not in serial
    network = re.search(r"xenlive-status: guest debian network ok addr=10\.0\.3\.10 .*uplink=(\S+) mgmt=(\S+)", serial)
    assert network and (network[1], network[2]) == ("ok", "closed"), network and network[0]
    assert "xenlive-status: guests stopped" in serial


@pytest.fixture(scope="module")
def bookworm_iso(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built("ci-bookworm.yaml", "xenlive-ci-bookworm", tmp_path_factory)


def test_bookworm_boots_with_a_trixie_guest_to_every_network_verdict_and_shuts_down_cleanly(
    bookworm_iso: Path, tmp_path: Path
) -> None:
    """dom0.suite: bookworm (Xen 4.17, Linux 6.1) keeps working: its guest of dom0's suite, and a trixie guest
    beside it, are ready with their network checks passed; the power button stops them and the machine."""
    manifest = json.loads(bookworm_iso.with_suffix(".manifest.json").read_text())
    assert manifest["versions"]["xen"].startswith("4.17") and "xen-hypervisor-4.17-amd64" in manifest["dom0_packages"]
    suites = {name: image["suite"] for name, image in manifest["guest_images"].items()}
    assert suites == {"debian": "bookworm", "debian-trixie": "trixie"}
    cases, serial = smoke_passes(bookworm_iso, tmp_path, "--shutdown")
    assert {"guest:debian", "network:debian", "guest:trixie", "network:trixie", "shutdown"} <= set(cases)
    assert "- runit: enter stage: /etc/runit/2" in serial and "[trixie] - runit: enter stage: /etc/runit/2" in serial
    for name, address, peer in (("debian", 10, "trixie"), ("trixie", 11, "debian")):
        verdict = re.search(
            rf"guest {name} network ok addr=10\.0\.3\.{address} resolve={peer}:ok uplink=(\S+) mgmt=(\S+)",
            serial,
        )
        assert verdict and (verdict[1], verdict[2]) == ("ok", "closed"), name
    assert "xenlive-status: guests stopped" in serial and "xenlive-status: dom0 down" in serial


def test_a_guest_that_dies_while_booting_is_reported_at_once(tmp_path: Path) -> None:
    """A guest whose kernel panics (here: no init in its initramfs, so the kernel has no root to mount) is
    failed by smoke at its panic line, and dom0 reports the crashed domain with that panic within seconds,
    instead of a timeout minutes later. The ISO boots its menu's troubleshooting entry (verbose Xen and dom0
    logging), the one a person picks when a guest fails."""
    from xenlive.qemu import QemuSpec, qemu_argv, running_qemu
    from xenlive.smoke import SmokeState

    recipe = tmp_path / "recipes" / "panic.yaml"
    recipe.parent.mkdir()
    recipe.write_text(
        f"extends: {ROOT / 'recipes' / 'ci.yaml'}\n"
        "iso:\n  name: xenlive-ci-panic\n  boot_menu:\n    default: troubleshoot\n"
        "guests:\n  - name: debian\n    image: debian\n    cmdline: rdinit=/nonexistent init=/nonexistent\n"
    )
    result = xenlive("build", str(recipe), "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr[-3000:]
    log = tmp_path / "serial.log"
    crashed = re.compile(r"xenlive-status: guest debian failed crashed: Kernel panic - not syncing: \S")
    with (
        log.open("wb") as serial,
        running_qemu(
            qemu_argv(QemuSpec(iso=tmp_path / "out" / "xenlive-ci-panic.iso", headless=True)), stdout=serial
        ) as proc,
    ):
        try:
            wait_for_serial(log, re.compile(r"\[debian\] .*Kernel panic - not syncing"), proc, 900)
            panicked = time.monotonic()
            wait_for_serial(log, crashed, proc, 30)
            assert time.monotonic() - panicked < 15, "dom0 took too long to see the crashed domain"
        except AssertionError:
            ARTIFACTS.mkdir(exist_ok=True)
            shutil.copy(log, ARTIFACTS / "panic.serial.log")
            raise
    xen_command_line = re.search(r"Command line: (.*)", log.read_text(errors="replace"))
    assert xen_command_line and "loglvl=all" in xen_command_line[1]  # the troubleshooting entry booted
    # smoke, reading the same console, fails the guest at its panic line.
    state = SmokeState()
    deciding = ""
    for line in log.read_bytes().decode(errors="replace").split("\n"):
        state.feed(0.0, line)
        if "debian" in state.guests and state.guests["debian"].state == "failed":
            deciding = line
            break
    panic = "kernel panic: Kernel panic - not syncing: VFS: Unable to mount root"
    assert state.guests["debian"].reason.startswith(panic)
    assert deciding.startswith("[debian]"), f"smoke decided at {deciding!r}, not at the guest's own panic line"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The web console's states (webconsole.py, state_from_flags) of a created guest that has not stopped: running
# (xl's r or b, booting or ready) or paused. Shut down, crashed, dying, stopped or unknown would be a failure.
LIVE_STATES = ("running", "paused")


def wait_for_serial(
    log: Path, pattern: re.Pattern[str], proc: subprocess.Popen[bytes], timeout: float
) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := pattern.search(log.read_text(errors="replace")):
            return found
        assert proc.poll() is None, f"QEMU exited (code {proc.returncode}) before {pattern.pattern!r} appeared"
        time.sleep(2)
    raise AssertionError(f"{pattern.pattern!r} not on the serial console after {timeout:g} s")


def ssh(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    """Plain ssh to dom0 through the forwarded port, trusting any host key: for what `xenlive ssh` does not do."""
    return subprocess.run(
        [
            *("ssh", "-p", str(port), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"),
            *("-o", "BatchMode=yes", "-o", "ConnectTimeout=60", *args),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def xenlive_ssh(runtime: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`xenlive ssh ARGS` through the real command line, finding the boot this test recorded under `runtime`."""
    return subprocess.run(
        [sys.executable, str(ROOT / "build.py"), "ssh", *args],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        check=False,
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)},
    )


def xenlive_ssh_until(runtime: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`xenlive ssh`, again until it succeeds: sshd starts after the guests' verdicts (a guest's once its network
    check has reported)."""
    deadline = time.monotonic() + timeout
    while (done := xenlive_ssh(runtime, *args)).returncode != 0 and time.monotonic() < deadline:
        time.sleep(3)
    return done


def bridge_ports(runtime: Path) -> str:
    """dom0's xenbr0 ports, through SSH: "vif1.0  UP  ..." per guest vif."""
    listed = xenlive_ssh(runtime, "dom0", "ip", "-br", "link", "show", "master", "xenbr0")
    assert listed.returncode == 0, listed.stderr
    return listed.stdout


class SerialConsole:
    """dom0's serial console on QEMU's Unix socket (QemuSpec.serial): what comes is appended to `log`, and a
    test types into it as a person at the terminal of `xenlive boot` would."""

    def __init__(self, path: Path, log: Path) -> None:
        self.log = log
        log.touch()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.sock.connect(str(path))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        self.sock.settimeout(0.2)
        with self.log.open("ab") as out:
            while not self._stop.is_set():
                try:
                    data = self.sock.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                out.write(data)
                out.flush()

    def type(self, text: str) -> None:
        self.sock.sendall(text.encode())

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def wait_for_text(console: SerialConsole, pattern: re.Pattern[str], after: int, timeout: float) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := pattern.search(console.text(), after):
            return found
        time.sleep(0.2)
    raise AssertionError(f"{pattern.pattern!r} not on the serial console {timeout:g} s after offset {after}")


def test_a_person_at_the_console_ssh_and_the_web_console_through_port_forwarding(ci_iso: Path, tmp_path: Path) -> None:
    """The CI ISO (no SSH key in its recipe) booted as `xenlive boot` does, with dom0's ports 22 and 8080
    forwarded and a key pair made for the boot. Once the guests are done: dom0's greeting lists the guest with
    its address; no guest line reaches dom0's console while the guest prints (until-ready); Ctrl-C in the
    guest's console reached with `xl console` interrupts `sleep 30` within 2 s; `xenlive ssh` runs commands in
    dom0 and in the guest, and a password login is refused; the guest's vif is up on the bridge; headless
    Chromium sees the guest running, is refused a shutdown without the token printed on the console, and shuts
    the guest down with it; then the vif is gone from the bridge."""
    from tests.webconsole_browser import check_web_console
    from xenlive.qemu import Forward, QemuSpec, qemu_argv, running_qemu
    from xenlive.sshboot import boot_session

    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    web, sshd = free_port(), free_port()
    log, serial = tmp_path / "serial.log", tmp_path / "serial.sock"
    screenshot = ARTIFACTS / "webconsole.png"
    ARTIFACTS.mkdir(exist_ok=True)
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)  # where boot_session records the boot, as `xenlive boot` does
    try:
        with boot_session(ci_iso, sshd) as session:
            spec = QemuSpec(
                iso=ci_iso,
                headless=True,
                serial=serial,
                forwards=(Forward(web, 8080), Forward(sshd, 22)),
                ssh_key=session.public_key(),
            )
            with running_qemu(qemu_argv(spec), stdout=subprocess.DEVNULL) as proc:
                console = SerialConsole(serial, log)
                try:
                    a_person_at_the_console(console, proc, runtime, web, sshd, screenshot, check_web_console)
                except AssertionError:
                    shutil.copy(log, ARTIFACTS / "person.serial.log")
                    raise
                finally:
                    console.close()
    finally:
        os.environ.pop("XDG_RUNTIME_DIR", None)
    serial_text = log.read_text(errors="replace")
    assert re.search(r"xenlive-web: shutdown debian by \S+: ok", serial_text), "the action is logged on the console"


def a_person_at_the_console(
    console: SerialConsole,
    proc: subprocess.Popen[bytes],
    runtime: Path,
    web: int,
    sshd: int,
    screenshot: Path,
    check_web_console: Callable[..., None],
) -> None:
    log = console.log
    token = wait_for_serial(log, re.compile(r"xenlive-status: web up port=8080 token=(\S+)"), proc, 900)[1]
    # Once the guest is created, the console answers and lists it as a live domain, whether the guest is still
    # booting or already ready: which of the two comes first is a race, not an outcome.
    wait_for_serial(log, re.compile(r"xenlive-status: guest debian created"), proc, 600)
    # While dom0 creates and boots the guest, its two vCPUs are busy under TCG: the answer may be slow (it took
    # over 15 s on a machine running two builds beside the boot).
    with urllib.request.urlopen(f"http://127.0.0.1:{web}/api/domains", timeout=90) as answer:
        states = {d["name"]: d["state"] for d in json.load(answer)["domains"]}
    assert states.get("debian") in LIVE_STATES, f"the created guest is listed as live: {states}"
    done = wait_for_serial(log, re.compile(r"xenlive-status: guests done ready=1 failed=0"), proc, 900).end()

    # The greeting: the guest with its type, state and address, and what to do next; at most 15 lines.
    greeting = wait_for_text(console, re.compile(r"xenlive: 1 of 1 guests ready\n[\s\S]*?SSH to a guest.*\n"), done, 60)
    # Read as text, each of the \r that dom0's tty and Xen's serial port add ends a line of its own.
    lines = [line for line in greeting[0].splitlines() if line.strip()]
    assert len(lines) <= 15, lines
    assert re.search(r"^\s+debian\s+pv\s+ready, network ok\s+10\.0\.3\.10\r*$", greeting[0], re.M), lines
    assert any("xl console NAME" in line for line in lines), lines
    assert any(f"token {token}" in line for line in lines), lines

    # xenlive ssh, with the boot's key (the recipe has none): dom0, then the guest through dom0.
    named = xenlive_ssh_until(runtime, "dom0", "uname", "-n")
    assert (named.returncode, named.stdout.strip()) == (0, "xenlive"), named.stderr
    named = xenlive_ssh_until(runtime, "debian", "uname", "-n")
    assert (named.returncode, named.stdout.strip()) == (0, "debian"), named.stderr
    failing = xenlive_ssh(runtime, "debian", "exit 3")
    assert failing.returncode == 3, failing.stderr  # the command's exit status
    listed = xenlive_ssh(runtime, "dom0", "xl", "list")
    assert listed.returncode == 0 and "debian" in listed.stdout, listed.stderr
    refused = ssh(sshd, "-o", "PreferredAuthentications=password", "root@127.0.0.1", "true")
    assert refused.returncode == 255 and "Permission denied" in refused.stderr, refused.stderr
    assert re.search(r"^vif\d+\.0 +UP", bridge_ports(runtime), re.M), "the guest's vif is up on xenbr0"

    # The guest keeps printing on its console: dom0 keeps it in the guest's log, not on its own console.
    chatter = xenlive_ssh(runtime, "debian", "for i in 1 2 3; do echo xenlive-chatter-$i >/dev/hvc0; done")
    assert chatter.returncode == 0, chatter.stderr
    kept = xenlive_ssh(runtime, "dom0", "sleep 2; cat /var/log/xenlive/guests/debian.log")
    assert "xenlive-chatter-3" in kept.stdout, kept.stdout[-2000:]

    # Ctrl-C in the guest's console, reached from dom0's serial console with `xl console`.
    mark = len(console.text())
    console.type("\rxl console debian\r")
    time.sleep(3)
    console.type("\r")
    wait_for_text(console, re.compile(r"root@debian:~# "), mark, 60)
    mark = len(console.text())
    console.type("sleep 30; echo slept-$?\r")
    time.sleep(2)
    pressed = time.monotonic()
    console.type("\x03")
    console.type("echo back-$?\r")
    wait_for_text(console, re.compile(r"^back-130\r*$", re.M), mark, 10)
    assert time.monotonic() - pressed < 2, "Ctrl-C took longer than 2 s to give the prompt back"
    assert "\nslept-" not in console.text()[mark:]
    console.type("\x1d")  # Ctrl-]: back to dom0
    wait_for_text(console, re.compile(r"root@xenlive:~# "), mark, 30)
    after_done = console.text()[done:]
    forwarded = [line for line in after_done.splitlines() if line.startswith("[debian]")]
    assert forwarded == [], f"guest lines reached dom0's console after 'guests done': {forwarded[:5]}"

    check_web_console(
        f"http://127.0.0.1:{web}/",
        token,
        guests=["debian"],
        shut_down="debian",
        screenshot=screenshot,
        timeout=300,
    )
    deadline = time.monotonic() + 60
    while "vif" in (ports := bridge_ports(runtime)) and time.monotonic() < deadline:
        time.sleep(2)
    assert "vif" not in ports, f"the vif outlives its guest: {ports}"


@pytest.mark.skipif(
    shutil.which("disk-image-create", path=str(Path(sys.executable).parent)) is None,
    reason="needs diskimage-builder (pip install xenlive[dib]; make test installs it)",
)
def test_an_mmdebstrap_and_a_diskimage_builder_guest_boot_and_resolve_each_other(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = xenlive("build", str(ROOT / "recipes" / "ci-dib.yaml"), "-o", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "guest image debian-dib (diskimage-builder)" in result.stderr + result.stdout
    log, junit = tmp_path / "serial.log", tmp_path / "smoke.xml"
    iso = out / "xenlive-ci-dib.iso"
    result = xenlive("smoke", str(iso), "--timeout", "900", "--log", str(log), "--junit", str(junit), timeout=1200)
    if result.returncode != 0:
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(log, ARTIFACTS / "ci-dib-smoke.serial.log")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    cases = {case.get("name"): case for case in ET.parse(junit).getroot().iter("testcase")}
    assert {"guest:debian", "guest:debian-dib", "network:debian", "network:debian-dib"} <= set(cases)
    assert all(case.find("failure") is None and case.find("skipped") is None for case in cases.values())
    serial = log.read_text(errors="replace")
    assert re.search(r"guest debian network ok addr=10\.0\.3\.10 resolve=debian-dib:ok uplink=ok", serial)
    assert re.search(r"guest debian-dib network ok addr=10\.0\.3\.11 resolve=debian:ok uplink=ok", serial)


def test_another_checkout_with_an_empty_cache_builds_the_same_iso(ci_iso: Path, tmp_path: Path) -> None:
    """Reproducible builds: the same recipe and archive state give the same ISO, bit for bit, from a copy of
    the checkout in another directory (no git history: no date comes from a commit) and with a cold cache."""
    manifest = json.loads(ci_iso.with_name("xenlive-ci.manifest.json").read_text())
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    copy = tmp_path / "elsewhere" / "xenlive"
    for name in files:
        if (ROOT / name).is_file() or (ROOT / name).is_symlink():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name, follow_symlinks=False)
    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            str(copy / "build.py"),
            "build",
            str(copy / "recipes" / "ci.yaml"),
            "-o",
            str(out),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    again = json.loads((out / "xenlive-ci.manifest.json").read_text())
    assert again["iso"]["sha256"] == manifest["iso"]["sha256"], (
        "the ISOs differ; `build.py diff` on the two explains how:\n"
        + xenlive("diff", "--summary", str(ci_iso), str(out / "xenlive-ci.iso")).stdout[-3000:]
    )


def test_the_wheel_installed_in_a_fresh_venv_builds_the_same_iso_from_another_directory(
    ci_iso: Path, tmp_path: Path
) -> None:
    """An installed xenlive builds what a checkout builds: its data trees are the checkout's, so every stage
    key is the same and, sharing the boot tests' cache, the build reuses every stage and gives the same bytes."""
    manifest = json.loads(ci_iso.with_name("xenlive-ci.manifest.json").read_text())
    bin_dir = install_wheel((tmp_path / "wheel").resolve())
    elsewhere, out = tmp_path / "elsewhere", tmp_path / "out"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "user-cache")  # where the wheel's data is unpacked
    result = subprocess.run(
        [str(bin_dir / "xenlive"), "build", "ci", "-o", str(out), "--cache-dir", str(CACHE)],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    again = json.loads((out / "xenlive-ci.manifest.json").read_text())
    assert {s["name"]: s["key"] for s in again["stages"]} == {s["name"]: s["key"] for s in manifest["stages"]}
    assert again["iso"]["sha256"] == manifest["iso"]["sha256"], (
        "the ISOs differ; `build.py diff` on the two explains how:\n"
        + xenlive("diff", "--summary", str(ci_iso), str(out / "xenlive-ci.iso")).stdout[-3000:]
    )
    assert again["recipe"]["path"] == "xenlive:recipes/ci.yaml"
    assert str(tmp_path) not in (out / "xenlive-ci.manifest.json").read_text().replace(str(out), "")
