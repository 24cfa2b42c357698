"""The recipe models: what the user asked for, typed and frozen. Field names follow xl.cfg(5) where one
exists (memory, vcpus, type, cmdline); every key has its description, unit and form for the reference."""

from __future__ import annotations

import hashlib
import ipaddress
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, Field

from xenlive.formats import (
    ARCHIVE_WORD_FORM,
    AUTHORIZED_KEY_FORM,
    CMDLINE_FORM,
    MAX_MEMORY_MIB,
    PACKAGE_FORM,
    PASSWORD_HASH_FORM,
    PATH_FORM,
    TITLE_FORM,
    URL_FORM,
    ArchiveWord,
    AuthorizedKey,
    Cmdline,
    MirrorUrl,
    Package,
    PasswordHash,
    PathText,
    Title,
    form,
)
from xenlive.suites import DEFAULT_SUITE, XEN_BY_SUITE, swap_suite
from xenlive.yamlpos import Model

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,30}$"
NAME_FORM = "1 to 31 of a-z, 0-9 and '-', starting with a letter or digit"


# Memory Xen keeps for itself and its page tables, not available to dom0 or guests (MiB).
XEN_OVERHEAD_MIB = 64

MIB: dict[str, Any] = {"unit": "MiB"}
# The latest time a build may be dated by: UFS1 (FreeBSD guests) and many tools keep 32-bit signed times.
MAX_EPOCH = 2**31 - 1


class BootMenu(Model):
    """The GRUB menu of the ISO. Its entries come from the templates under `grub/`."""

    title: Title = Field(
        "Xen live demo", description="Title of the default menu entry.", json_schema_extra=form(TITLE_FORM)
    )
    timeout: Annotated[int, Field(ge=0, le=600)] = Field(
        5,
        description="Seconds the menu waits before it boots the default entry; 0 boots it at once.",
        json_schema_extra={"unit": "seconds"},
    )
    default: Literal["demo", "troubleshoot"] = Field(
        "demo",
        description="Entry booted when the timeout runs out: `demo` boots quietly; `troubleshoot` boots with "
        "verbose Xen and dom0 logging on the serial console.",
    )


class Iso(Model):
    """The ISO image that `build` writes as OUTDIR/NAME.iso, with OUTDIR/NAME.manifest.json beside it."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=64)] = Field(
        description="File name of the ISO and its manifest, without extension.",
        json_schema_extra={"form": "letters, digits, '.', '_' and '-', starting with a letter or digit"},
    )
    volume_label: Annotated[str, Field(pattern=r"^[A-Z0-9_]{1,32}$")] = Field(
        "XENLIVE",
        description="ISO 9660 volume label, the name the medium shows when it is mounted.",
        json_schema_extra={"form": "1 to 32 of A-Z, 0-9 and _"},
    )
    boot_menu: BootMenu = Field(default_factory=BootMenu, description="The GRUB boot menu.")
    source_date_epoch: Annotated[int, Field(ge=0, le=MAX_EPOCH)] | None = Field(
        None,
        description="The time the ISO and dom0's config layer (the stages that read the recipe) date their files "
        "by, in seconds since 1970, as SOURCE_DATE_EPOCH. dom0's root filesystem and the guest images keep their "
        "own dates, so that recipes share them: the archive's snapshot time, else 2024-01-01 (see README.md, "
        "Reproducible builds). Unset: the SOURCE_DATE_EPOCH environment variable (which dates every stage), else "
        "2024-01-01 00:00 UTC. Changing it rebuilds the config layer and the ISO.",
        json_schema_extra={"default_text": "$SOURCE_DATE_EPOCH, else 1704067200 (2024-01-01)"},
    )


class Hypervisor(Model):
    """Xen itself, from Debian's xen-hypervisor package of the dom0 suite."""

    xen_version: Annotated[str, Field(pattern=r"^[0-9]{1,2}\.[0-9]{1,2}$")] | None = Field(
        None,
        description="Xen version; must be the one the dom0 suite ships ("
        + ", ".join(f'{suite}: "{xen}"' for suite, xen in XEN_BY_SUITE.items())
        + "). Leave it out to take the suite's. Quote it in YAML: an unquoted 4.20 is a number.",
        json_schema_extra={"form": 'MAJOR.MINOR, e.g. "4.20"', "default_text": "the one dom0.suite ships"},
    )
    cmdline: Cmdline = Field(
        "loglvl=warning guest_loglvl=warning bootscrub=off",
        description="Extra Xen command line. xenlive adds the console and `dom0_mem` options itself. "
        "`bootscrub=off` skips Xen's background scrubbing of free memory at boot, which under QEMU TCG "
        "competes with dom0 and the guests for the CPUs (measured: dom0 up at 74 s instead of 114 s, a Debian "
        "guest ready after 64 s of its own boot instead of 145 s); drop it on hardware whose RAM may hold "
        "secrets from an earlier boot.",
        json_schema_extra=form(CMDLINE_FORM),
    )


class Mirror(Model):
    """One Debian archive source, as in a deb822 sources entry."""

    url: MirrorUrl = Field(description="Archive URL.", json_schema_extra=form(URL_FORM))
    suites: Annotated[list[ArchiveWord], Field(min_length=1)] = Field(
        description="Suites to use from this archive, e.g. `[trixie, trixie-updates]`.",
        json_schema_extra=form(ARCHIVE_WORD_FORM),
    )
    components: Annotated[list[ArchiveWord], Field(min_length=1)] = Field(
        ["main"], description="Archive components.", json_schema_extra=form(ARCHIVE_WORD_FORM)
    )

    def source_lines(self) -> list[str]:
        """One-line apt sources, one per suite, as mmdebstrap takes them on its command line."""
        return [f"deb {self.url} {suite} {' '.join(self.components)}" for suite in self.suites]


class Ssh(Model):
    """SSH into dom0. sshd starts on the first connection (socket activation) and makes its host key then,
    so no key is ever baked into the ISO."""

    authorized_keys: list[AuthorizedKey] = Field(
        [],
        description="Public keys allowed to log in as root, one OpenSSH public key each.",
        json_schema_extra=form(AUTHORIZED_KEY_FORM),
    )
    password_login: bool = Field(
        False, description="Allow password logins (needs `root_password_hash`). Keys only when false."
    )
    root_password_hash: PasswordHash | None = Field(
        None,
        description="root's password as a crypt(3) hash, e.g. from `mkpasswd -m yescrypt`.",
        json_schema_extra=form(PASSWORD_HASH_FORM, default_text="none (no root password)"),
    )


class Dom0(Model):
    """The live Debian system Xen boots as dom0. It starts the guests."""

    init: Literal["runit", "systemd"] = Field(
        "runit",
        description="dom0's init. `runit`: Debian's runit starts Xen's toolstack, the guests and dom0's "
        "services (network, DHCP and DNS, SSH, the web console) as supervised services, with nothing "
        "else on the way. `systemd`: Debian's systemd, with its journal, udev and unit graph; dom0 boots "
        "about 2x slower under QEMU TCG (see BENCHMARKS.md).",
    )
    suite: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$", max_length=64)] = Field(
        DEFAULT_SUITE,
        description="Debian suite of dom0, and of Debian guest images that name none of their own. Supported: "
        + ", ".join(XEN_BY_SUITE)
        + ".",
        json_schema_extra=form("a Debian suite name such as trixie"),
    )
    mirrors: list[Mirror] | None = Field(
        None,
        description="Archive sources. Leave it out to use deb.debian.org for SUITE and SUITE-updates and "
        "the security archive for SUITE-security.",
        json_schema_extra={"default_text": "deb.debian.org (SUITE, SUITE-updates) and the security archive"},
    )
    packages: list[Package] = Field(
        [], description="Extra Debian packages installed in dom0.", json_schema_extra=form(PACKAGE_FORM)
    )
    overlays: list[PathText] = Field(
        [],
        description="Directory trees copied into dom0 after the built-in `overlays/xenlive`, in order: a name "
        "looked up under `overlays/`, or a path (containing '/') relative to the recipe. Files ending in "
        "`.j2` are rendered with jinja2 and lose the suffix. Each must lie in the recipe's project.",
        json_schema_extra=form(PATH_FORM),
    )
    hostname: Annotated[str, Field(pattern=NAME_PATTERN)] = Field(
        "xenlive", description="dom0's host name.", json_schema_extra={"form": NAME_FORM}
    )
    memory: Annotated[int, Field(ge=256, le=MAX_MEMORY_MIB)] = Field(
        512, description="dom0 memory, given to Xen as `dom0_mem=SIZE,max:SIZE`.", json_schema_extra=MIB
    )
    cmdline: Cmdline = Field(
        "",
        description="Extra dom0 kernel command line. Avoid `quiet`: under QEMU TCG it made dom0 reach its "
        "toolstack in 284 s instead of 114 s (measured; the boot log on the console keeps it moving).",
        json_schema_extra=form(CMDLINE_FORM),
    )
    autologin: bool = Field(True, description="Log root in on the console (hvc0) without a password.")
    console_forwarding: Literal["until-ready", "always", "never"] = Field(
        "until-ready",
        description="Which guest console lines dom0 copies to its own console (the serial port, as `[NAME] "
        "LINE`). `until-ready`: each guest's lines until it is ready and has reported its network (or has "
        "failed), and again while dom0 shuts the guests down, so that a person can work on dom0's console "
        "afterwards. `always`: every line, as long as the machine runs. `never`: none; smoke still gets every "
        "verdict from dom0's status lines (a guest's kernel panic too). Every line also goes to "
        "`/var/log/xenlive/guests/NAME.log` in dom0, and `xl console NAME` shows the guest's console.",
    )
    ssh: Ssh = Field(default_factory=Ssh, description="SSH into dom0 (`build.py boot` forwards a port to it).")
    web_console: bool = Field(
        True, description="Serve the web console (domains, consoles, start/stop) on port 8080 of every dom0 address."
    )

    def apt_sources(self, suite: str | None = None) -> list[str]:
        """The one-line apt sources of every mirror, in order: the first bootstraps a tree. With `suite`: those
        of a Debian guest image of that suite (mirrors_for)."""
        mirrors = self.resolved_mirrors() if suite is None else self.mirrors_for(suite)
        return [line for mirror in mirrors or [] for line in mirror.source_lines()]

    def mirrors_for(self, suite: str) -> list[Mirror] | None:
        """dom0's mirrors with `suite` in place of dom0's own (SUITE, SUITE-updates, SUITE-security): where a
        Debian guest image of that suite installs from. None when the mirrors list no suite of dom0's to put
        it in place of (explicit mirrors that name, say, only `stable`)."""
        mirrors = self.resolved_mirrors()
        if suite == self.suite:
            return mirrors
        if not any(word == self.suite for mirror in mirrors for word in mirror.suites):
            return None
        return [
            mirror.model_copy(update={"suites": [swap_suite(word, self.suite, suite) for word in mirror.suites]})
            for mirror in mirrors
        ]

    def resolved_mirrors(self) -> list[Mirror]:
        if self.mirrors is not None:
            return self.mirrors
        return [
            Mirror(url="http://deb.debian.org/debian", suites=[self.suite, f"{self.suite}-updates"]),
            Mirror(url="http://deb.debian.org/debian-security", suites=[f"{self.suite}-security"]),
        ]


class Machine(Model):
    """The (virtual) machine the ISO is meant for. `boot` and `smoke` use it as their QEMU defaults, and the
    memory of dom0, Xen and the autostart guests must fit in it."""

    memory: Annotated[int, Field(ge=512, le=MAX_MEMORY_MIB)] = Field(1024, description="RAM.", json_schema_extra=MIB)
    vcpus: Annotated[int, Field(ge=1, le=64)] = Field(2, description="Number of CPUs.")


# The private IPv4 ranges (RFC 1918) the guests' subnet must lie in.
PRIVATE_RANGES = tuple(ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


def _ipv4_network(value: str) -> str:
    try:
        network = ipaddress.IPv4Network(value)
    except ValueError as exc:
        raise ValueError(f"not an IPv4 network: {exc}") from None
    if not any(network.subnet_of(private) for private in PRIVATE_RANGES):
        *first, last = (str(r) for r in PRIVATE_RANGES)
        raise ValueError(
            f"{network} is not a private network: the guests' subnet must lie in {', '.join(first)} or {last} "
            "(hint: use a /24 such as 10.0.3.0/24)"
        )
    return str(network)


class Network(Model):
    """The guests' network: a bridge in dom0, DHCP and DNS for the guests (dnsmasq), and NAT out through
    dom0's own uplink. Each guest gets one vif on the bridge with a MAC derived from its name."""

    enabled: bool = Field(True, description="Give every guest a vif on the bridge. Off: guests have no network.")
    bridge: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,14}$")] = Field(
        "xenbr0", description="Name of the bridge in dom0.", json_schema_extra={"form": "a Linux interface name"}
    )
    subnet: Annotated[str, AfterValidator(_ipv4_network)] = Field(
        "10.0.3.0/24",
        description="IPv4 subnet of the bridge. dom0 takes the first address, guest N (from 0) the 10+N-th.",
        json_schema_extra={
            "form": "a private IPv4 network (in 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16) such as 10.0.3.0/24, "
            "at most /26"
        },
    )
    domain: Annotated[
        str, Field(pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$", max_length=253)
    ] = Field("xen.lan", description="DNS domain of the guests; dnsmasq answers for NAME and NAME.DOMAIN.")
    nat: bool = Field(True, description="Masquerade the guests' traffic out through dom0's uplink.")
    management_from_guests: bool = Field(
        False,
        description="Let the guests reach dom0's SSH (port 22) and web console (port 8080) over the bridge. Off: "
        "dom0 refuses those connections from the bridge, over IPv4 and IPv6 (a guest is not trusted with the "
        "host's management plane); guests still get DHCP and DNS from dom0, ping it, and reach the uplink.",
    )

    # What templates may use besides the keys (xenlive.render).
    TEMPLATE_HELPERS: ClassVar[tuple[str, ...]] = ("network", "dom0_address", "guest_address")

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet)

    def dom0_address(self) -> ipaddress.IPv4Address:
        return self.network.network_address + 1

    def guest_address(self, index: int) -> ipaddress.IPv4Address:
        return self.network.network_address + 10 + index


def guest_mac(name: str) -> str:
    """A stable MAC for a guest's vif: Xen's OUI 00:16:3e and three bytes of sha256(name)."""
    digest = hashlib.sha256(name.encode()).digest()
    return "00:16:3e:" + ":".join(f"{b:02x}" for b in (digest[0] & 0x7F, digest[1], digest[2]))


class Guest(Model):
    """One domain that dom0 creates at boot, in the order of the list. Keys follow xl.cfg(5)."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)] = Field(
        description="Domain name, also the guest's host name. Unique, and not dom0's hostname.",
        json_schema_extra={"form": NAME_FORM},
    )
    image: Annotated[str, Field(pattern=r"^[A-Za-z0-9._/-]+$", max_length=255)] = Field(
        description="Guest image recipe: a name looked up as `guest-images/NAME.yaml`, or a path (containing "
        "'/' or ending in .yaml) relative to the recipe.",
        json_schema_extra={"form": "a name or relative path of letters, digits, '.', '_', '/' and '-'"},
    )
    type: Literal["pv", "pvh", "hvm"] = Field(
        "pv", description="Virtualisation mode, as xl.cfg `type`. The guest image must list it in its `types`."
    )
    memory: Annotated[int, Field(ge=32, le=MAX_MEMORY_MIB)] = Field(
        128,
        description="Memory, as xl.cfg `memory`; at least the guest image's `min_memory`.",
        json_schema_extra=MIB,
    )
    vcpus: Annotated[int, Field(ge=1, le=64)] = Field(1, description="Number of virtual CPUs, as xl.cfg `vcpus`.")
    autostart: bool = Field(
        True, description="Create the domain when dom0 boots. Only autostart guests count against machine.memory."
    )
    cmdline: Cmdline = Field(
        "",
        description="Extra guest kernel command line, as xl.cfg `cmdline` (`extra` for NetBSD).",
        json_schema_extra=form(CMDLINE_FORM),
    )


class Recipe(Model):
    """A whole recipe, after `extends` is resolved."""

    iso: Iso = Field(description="The ISO image.")
    hypervisor: Hypervisor = Field(default_factory=Hypervisor, description="Xen.")
    dom0: Dom0 = Field(default_factory=Dom0, description="The live dom0.")
    machine: Machine = Field(default_factory=Machine, description="The machine it boots on.")
    network: Network = Field(default_factory=Network, description="The guests' network.")
    guests: list[Guest] = Field([], description="Domains dom0 creates, in order.")

    def xen_version(self) -> str:
        """The Xen version dom0 installs: the recipe's, else the one its suite ships (the checks make them agree)."""
        return self.hypervisor.xen_version or XEN_BY_SUITE[self.dom0.suite]
