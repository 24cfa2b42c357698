"""Cross-field checks: the suite and Xen, guest names, memory, SSH and the network, with how to fix each."""

from __future__ import annotations

import difflib

from xenlive.errors import Problem
from xenlive.guestimage import LoadedGuestImage
from xenlive.recipe.model import XEN_OVERHEAD_MIB, Dom0, Guest, Hypervisor, Machine, Network
from xenlive.recipe.valid import guests_of, section, valid_or_none, valid_value
from xenlive.suites import XEN_BY_SUITE
from xenlive.yamlpos import KeyPath, Located


def cross_checks(located: Located, complete: bool) -> list[Problem]:
    """Checks across keys. Those that combine values from several files need the whole `extends` chain."""
    data = located.data
    problems: list[Problem] = []
    suite = valid_value(Dom0, section(data, "dom0"), "suite")
    xen_version = valid_value(Hypervisor, section(data, "hypervisor"), "xen_version")
    if suite is not None and suite not in XEN_BY_SUITE:
        close = difflib.get_close_matches(suite, list(XEN_BY_SUITE), n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"supported: {', '.join(XEN_BY_SUITE)}"
        problems.append(located.problem(("dom0", "suite"), f"unsupported suite '{suite}'", hint))
    elif suite is not None and xen_version is not None and XEN_BY_SUITE[suite] != xen_version:
        xen = XEN_BY_SUITE[suite]
        problems.append(
            located.problem(
                ("hypervisor", "xen_version"),
                f"Debian {suite} ships Xen {xen}",
                f'set hypervisor.xen_version: "{xen}", or leave it out to take the suite\'s',
            )
        )

    hostname = valid_value(Dom0, section(data, "dom0"), "hostname") if complete else None
    seen: dict[str, int] = {}
    for i, raw in enumerate(guests_of(data)):
        name = valid_value(Guest, raw, "name")
        at: KeyPath = ("guests", i, "name")
        if name is None:
            continue
        if name in seen:
            problems.append(
                located.problem(
                    at,
                    f"duplicate guest name '{name}' (also guests[{seen[name]}])",
                    "every guest needs a name of its own",
                )
            )
        else:
            seen[name] = i
        if name == hostname:
            problems.append(
                located.problem(at, f"guest name '{name}' is dom0's hostname", "rename the guest or set dom0.hostname")
            )

    dom0 = valid_or_none(Dom0, section(data, "dom0"))
    machine = valid_or_none(Machine, section(data, "machine"))
    guests = [valid_or_none(Guest, raw) for raw in guests_of(data)]
    if complete and dom0 is not None and machine is not None and None not in guests:
        problems += _check_memory(dom0, machine, [g for g in guests if g is not None], located)
    if dom0 is not None and dom0.ssh.password_login and dom0.ssh.root_password_hash is None:
        problems.append(
            located.problem(
                ("dom0", "ssh", "password_login"),
                "password logins need a root password",
                "set dom0.ssh.root_password_hash (e.g. from `mkpasswd -m yescrypt`) or use authorized_keys",
            )
        )
    network = valid_or_none(Network, section(data, "network"))
    if network is not None:
        problems += _check_network(network, len(guests), located)
    return problems


def check_guest_memory(located: Located, images: dict[str, LoadedGuestImage]) -> list[Problem]:
    """Each guest gets at least the memory its image boots with (the image's `min_memory`)."""
    problems: list[Problem] = []
    for i, raw in enumerate(guests_of(located.data)):
        name, memory = valid_value(Guest, raw, "name"), valid_value(Guest, raw, "memory")
        image = images.get(name) if name is not None else None
        if image is None or memory is None or memory >= image.image.min_memory:
            continue
        least = image.image.min_memory
        given = f"{memory} MiB" + ("" if isinstance(raw, dict) and "memory" in raw else " (the default)")
        problems.append(
            located.problem(
                ("guests", i, "memory"),
                f"{given} is less than the {least} MiB that guest image '{image.name}' boots with (its min_memory)",
                f"give the guest `memory: {least}` or more",
            )
        )
    return problems


def check_guest_suites(located: Located, images: dict[str, LoadedGuestImage]) -> list[Problem]:
    """A Debian guest image of another suite than dom0's installs from dom0's mirrors with its suite in place of
    dom0's: explicit `dom0.mirrors` must name dom0's suite for that."""
    dom0 = valid_or_none(Dom0, section(located.data, "dom0"))
    if dom0 is None or dom0.mirrors is None:
        return []
    problems: list[Problem] = []
    for i, raw in enumerate(guests_of(located.data)):
        name = valid_value(Guest, raw, "name")
        image = images.get(name) if name is not None else None
        if image is None or not image.builder.from_archive or image.image.suite in (None, dom0.suite):
            continue
        if dom0.mirrors_for(image.image.suite) is None:
            problems.append(
                located.problem(
                    ("guests", i, "image"),
                    f"guest image '{image.name}' is of suite {image.image.suite}, but dom0.mirrors name no suite "
                    f"{dom0.suite} to put it in place of",
                    f"list {dom0.suite} (and {dom0.suite}-updates, {dom0.suite}-security) in dom0.mirrors, or "
                    "leave dom0.mirrors out",
                )
            )
    return problems


def _check_network(network: Network, guests: int, located: Located) -> list[Problem]:
    """dom0, then guests from the 10th address on: the subnet must hold them all, and DHCP's spare range."""
    if network.network.prefixlen > 26:
        return [
            located.problem(
                ("network", "subnet"),
                f"{network.subnet} is too small: xenlive needs at least a /26",
                "use a /24 such as 10.0.3.0/24",
            )
        ]
    if 10 + guests >= network.network.num_addresses - 1:
        return [
            located.problem(
                ("network", "subnet"),
                f"{network.subnet} has no address for each of the {guests} guests",
                "use a larger subnet",
            )
        ]
    return []


def _check_memory(dom0: Dom0, machine: Machine, guests: list[Guest], located: Located) -> list[Problem]:
    autostart = [g for g in guests if g.autostart]
    needed = XEN_OVERHEAD_MIB + dom0.memory + sum(g.memory for g in autostart)
    if needed <= machine.memory:
        return []
    parts = [f"Xen {XEN_OVERHEAD_MIB}", f"dom0 {dom0.memory}"] + [f"{g.name} {g.memory}" for g in autostart]
    if not autostart:
        return [
            located.problem(
                ("dom0", "memory"),
                f"Xen and dom0 need {needed} MiB ({' + '.join(parts)}) but machine.memory is {machine.memory} MiB",
                f"raise machine.memory to at least {needed} or lower dom0.memory",
            )
        ]
    return [
        located.problem(
            ("guests",),
            at_key=True,
            message=f"autostart guests need {needed} MiB ({' + '.join(parts)}) but "
            f"machine.memory is {machine.memory} MiB",
            hint=f"raise machine.memory to at least {needed}, lower guest or dom0 memory, "
            "or set autostart: false on some guests",
        )
    ]
