"""dom0's services are declared once (xenlive/services.py) and rendered for both inits: each runs the same
command under runit and systemd, starts when the table says, and both inits give the same modes to the
files that hold secrets (root's password hash, the web console's token in a log)."""

from __future__ import annotations

import os
import re
import shlex
import stat
from pathlib import Path

import pytest

from xenlive.contract import CONTRACT
from xenlive.recipe import LoadedRecipe, Recipe, load_recipe
from xenlive.services import HOST_KEY, Service, dom0_services, install_services, runit_run, systemd_unit
from xenlive.stages.config import install_config

ROOT = Path(__file__).resolve().parents[2]
HASH = "$y$j9T$Q8fBHcVrBpsxUkVRyJjI0/$3rGLqwk5P.HEv2P0SD1uTmR3ycN7mwLcXIG/4I8aB/C"


def with_init(recipe: Recipe, init: str, **dom0: object) -> Recipe:
    return recipe.model_copy(update={"dom0": recipe.dom0.model_copy(update={"init": init, **dom0})})


@pytest.fixture(scope="module")
def ci() -> Recipe:
    recipe = load_recipe(ROOT / "recipes" / "ci.yaml").recipe
    assert recipe.guests, "the table's per-guest services need a guest"
    return recipe


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def runit_command(run: Path) -> list[str]:
    """The argv a runit run script execs at its end, without env's settings, chpst and a redirection."""
    last = run.read_text().splitlines()[-1]
    assert last.startswith("exec "), f"{run}: a run script execs its daemon"
    argv = shlex.split(last.removeprefix("exec ").split(" >>")[0])
    if argv[0] == "env":
        argv = argv[1:]
        while "=" in argv[0]:
            argv = argv[1:]
    if argv[0] == "chpst":
        argv = argv[1:]
        while argv[0].startswith("-"):
            argv = argv[2:] if argv[0] in ("-n", "-u") else argv[1:]
    return argv


def systemd_values(unit: Path, key: str) -> list[str]:
    """The values of KEY= in a unit or drop-in, after its last reset (an empty KEY=)."""
    values: list[str] = []
    for line in unit.read_text().splitlines():
        if line.startswith(f"{key}="):
            value = line.split("=", 1)[1]
            values = [*values, value] if value else []
    return values


def systemd_file(tree: Path, service: Service) -> Path:
    units = tree / "etc/systemd/system"
    if service.debian_unit:
        return units / f"{service.debian_unit}.d" / "xenlive.conf"
    return units / (f"{service.instance_of}@.service" if service.instance_of else service.unit_name())


def both(tmp_path: Path, recipe: Recipe) -> tuple[Path, Path]:
    runit, systemd = tmp_path / "runit", tmp_path / "systemd"
    install_services(runit, with_init(recipe, "runit"))
    install_services(systemd, with_init(recipe, "systemd"))
    return runit, systemd


def test_every_declared_service_is_a_runit_service_and_a_systemd_unit_with_the_same_command(
    tmp_path: Path, ci: Recipe
) -> None:
    runit, systemd = both(tmp_path, ci)
    table = dom0_services(ci).services
    assert {s.name for s in table} >= {
        "xenlive-sshd",
        "xenlive-dnsmasq",
        "xenlive-web",
        "xenlive-getty-hvc0",
        "xenlive-getty-tty1",
        *(f"xenlive-console-{guest.name}" for guest in ci.guests),
    }
    for service in table:
        run = runit / "etc/sv" / service.name / "run"
        assert runit_command(run) == list(service.command), service.name
        assert (runit / "etc/runit/runsvdir/xenlive" / service.name).resolve() == run.parent.resolve()
        unit = systemd_file(systemd, service)
        if service.debian_command:  # sshd: Debian's, started by ssh.socket
            assert systemd_values(unit, "ExecStart") == []
            continue
        (exec_start,) = systemd_values(unit, "ExecStart")
        instance = {"%i": service.instance} if service.instance_of else {}
        assert [instance.get(word, word) for word in shlex.split(exec_start)] == list(service.command)
        if not service.debian_unit:
            wanted = systemd / "etc/systemd/system/multi-user.target.wants" / service.unit_name()
            assert wanted.resolve() == unit.resolve(), f"{service.name} is started at boot"


def test_runit_starts_each_service_when_the_table_says_and_xenlive_boot_starts_the_rest(
    tmp_path: Path, ci: Recipe
) -> None:
    runit, _ = both(tmp_path, ci)
    services = dom0_services(ci)
    starts = {s.name: s.start for s in services.services} | {s.name: s.start for s in services.runit_only}
    init_conf = (runit / CONTRACT.INIT_CONF.lstrip("/")).read_text()
    after = dict(re.findall(r'^AFTER_(CREATED|READY)="sv up ([^"]*)"$', init_conf, re.M))
    for name, start in starts.items():
        assert (runit / "etc/sv" / name / "down").exists() == (start != "boot"), name
        assert (runit / "etc/runit/runsvdir/xenlive" / name).is_symlink(), name
    assert after["CREATED"].split() == [n for n, s in starts.items() if s == "created"]
    assert after["READY"].split() == [n for n, s in starts.items() if s == "ready"]
    # As before the table: what the guests' network needs once they exist; logins once one is ready.
    assert after["CREATED"].split() == ["xenlive-dnsmasq", "xenlive-coldplug", "xenlive-uplink"]
    assert after["READY"].split() == ["xenlive-getty-hvc0", "xenlive-getty-tty1", "xenlive-acpid"]


def test_the_generated_run_scripts_keep_runits_conventions(tmp_path: Path, ci: Recipe) -> None:
    runit, _ = both(tmp_path, ci)
    web = (runit / "etc/sv/xenlive-web/run").read_text().splitlines()
    assert web[0] == "#!/bin/sh"
    assert web[-3:] == [
        "exec 2>&1",
        "umask 077",
        "exec env PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 chpst -n 10 /usr/bin/python3 "
        "/usr/lib/xenlive/webconsole.py",
    ]
    tty1 = (runit / "etc/sv/xenlive-getty-tty1/run").read_text().splitlines()
    assert tty1[-2:] == ["[ -c /dev/tty1 ] || exec sv down .", "exec chpst -P -n 10 /sbin/agetty --noclear tty1 linux"]
    guest = ci.guests[0].name
    forwarder = (runit / f"etc/sv/xenlive-console-{guest}/run").read_text().splitlines()
    # No svlogd for a forwarder: one process fewer on the guests' path.
    assert forwarder[-1] == f"exec /usr/lib/xenlive/xenlive-console {guest} >>/var/log/xenlive/console-{guest}.log 2>&1"
    assert not (runit / f"etc/sv/xenlive-console-{guest}/log").exists()
    for log_run in (runit / "etc/sv").glob("*/log/run"):
        name = log_run.parent.parent.name
        assert log_run.read_text().splitlines()[-1] == f"exec svlogd -tt /var/log/xenlive/{name}"
        assert mode(log_run) == 0o755


def test_the_recipes_switches_reach_both_inits(tmp_path: Path, ci: Recipe) -> None:
    runit, systemd = both(tmp_path, with_init(ci, "runit", web_console=False, autologin=False))
    web_run = (runit / "etc/sv/xenlive-web/run").read_text()
    assert "grep -qw xenlive.web_console=on /proc/cmdline || exec sv down .\n" in web_run
    assert (
        "ConditionKernelCommandLine=xenlive.web_console=on\n"
        in (systemd / "etc/systemd/system/xenlive-web.service").read_text()
    )
    hvc0 = systemd_values(systemd / "etc/systemd/system/serial-getty@hvc0.service.d/xenlive.conf", "ExecStart")
    assert hvc0 == ["/sbin/agetty --keep-baud 115200,57600,38400,9600 hvc0 linux"]
    assert runit_command(runit / "etc/sv/xenlive-getty-hvc0/run") == shlex.split(hvc0[0])

    runit, systemd = both(tmp_path / "on", ci)
    assert "/proc/cmdline" not in (runit / "etc/sv/xenlive-web/run").read_text()
    assert "--autologin root" in (runit / "etc/sv/xenlive-getty-hvc0/run").read_text()


def test_the_host_key_is_made_by_the_same_command_in_both_inits(tmp_path: Path, ci: Recipe) -> None:
    runit, systemd = both(tmp_path, ci)
    keygen = ["/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", HOST_KEY]
    run = (runit / "etc/sv/xenlive-sshd/run").read_text().splitlines()
    assert shlex.split(run[-2]) == ["[", "-e", HOST_KEY, "]", "||", "chpst", "-n", "10", *keygen]
    dropin = systemd / "etc/systemd/system/ssh.service.d/xenlive.conf"
    setup, check = systemd_values(dropin, "ExecStartPre")
    sh, dash_c, script = shlex.split(setup)
    assert (sh, dash_c) == ("/bin/sh", "-c")
    assert shlex.split(script) == ["[", "-e", HOST_KEY, "]", "||", "exec", "nice", "-n", "10", *keygen]
    assert check == "/usr/sbin/sshd -t"  # Debian's, kept after the key is made


def tree_for(tmp_path: Path, init: str, *, password: bool) -> Path:
    """dom0's config layer as the stage lays it out, for a recipe of dom0 alone with this init."""
    ssh = f", ssh: {{root_password_hash: '{HASH}', password_login: true}}" if password else ""
    recipe = tmp_path / f"{init}.yaml"
    recipe.write_text(f"iso: {{name: demo}}\ndom0: {{init: {init}{ssh}}}\n")
    loaded: LoadedRecipe = load_recipe(recipe)
    tree = tmp_path / f"tree-{init}"
    install_config(tree, loaded)
    return tree


@pytest.mark.parametrize("password", [True, False])
def test_both_inits_keep_the_root_password_hash_0600_and_set_it_before_sshd(tmp_path: Path, password: bool) -> None:
    rel = CONTRACT.PASSWORD_HASH.lstrip("/")
    runit, systemd = tree_for(tmp_path, "runit", password=password), tree_for(tmp_path, "systemd", password=password)
    for tree in (runit, systemd):
        assert mode(tree / rel) == 0o600
        assert (tree / rel).read_text().strip() == (HASH if password else "")
    # runit sets it in stage 1 (before stage 2 starts sshd), from the file as it is: no stage-1 script
    # makes it readable, or needs to chmod it.
    stage1 = sorted((runit / "etc/runit/boot-run").iterdir())
    assert [p.name for p in stage1] == ["10-xenlive.sh", "20-xenlive-root-password.sh"]
    assert all(CONTRACT.PASSWORD_HASH not in p.read_text() for p in stage1[:1])
    assert all("chmod" not in p.read_text() for p in stage1)
    task = stage1[1].read_text().splitlines()[-1]
    unit = systemd / "etc/systemd/system/xenlive-root-password.service"
    (exec_start,) = systemd_values(unit, "ExecStart")
    assert task == f"if [ -s {CONTRACT.PASSWORD_HASH} ]; then {shlex.split(exec_start)[2]}; fi"
    assert systemd_values(unit, "ConditionFileNotEmpty") == [CONTRACT.PASSWORD_HASH]
    assert systemd_values(unit, "Before") == ["ssh.service"]
    assert (systemd / "etc/systemd/system/multi-user.target.wants/xenlive-root-password.service").is_symlink()


def test_the_web_consoles_token_is_in_no_log_others_can_read(tmp_path: Path) -> None:
    runit, systemd = tree_for(tmp_path, "runit", password=False), tree_for(tmp_path, "systemd", password=False)
    # runit: svlogd makes its files readable by all, so its directory is root's alone (stage 1's mkdir -p
    # leaves a directory that exists as it is).
    logs = runit / CONTRACT.SERVICE_LOGS.lstrip("/")
    assert mode(logs) == 0o755
    assert mode(logs / "xenlive-web") == 0o700
    assert "exec svlogd -tt /var/log/xenlive/xenlive-web" in (runit / "etc/sv/xenlive-web/log/run").read_text()
    # systemd: the journal, which others cannot read; never a file of its own.
    web = (systemd / "etc/systemd/system/xenlive-web.service").read_text()
    assert "StandardOutput=" not in web and "StandardError=" not in web
    # Whatever the web console writes itself, in either init, is root's alone.
    assert "UMask=0077\n" in web
    assert "\numask 077\n" in (runit / "etc/sv/xenlive-web/run").read_text()


def test_the_inits_overlays_hold_no_hand_written_copy_of_a_declared_service(ci: Recipe) -> None:
    overlays = ROOT / "overlays"
    for service in dom0_services(ci).services:
        assert not (overlays / "xenlive-runit/etc/sv" / service.name).exists(), service.name
        if not service.debian_unit:
            assert not (overlays / "xenlive-systemd/etc/systemd/system" / service.unit_name()).exists()
    assert not (overlays / "xenlive-systemd/etc/systemd/system/xenlive-console@.service").exists()
    assert not list((overlays / "xenlive-runit").rglob("down")), "down files come from the table"
    assert not (overlays / "xenlive-runit/etc/runit/runsvdir").exists(), "so do the links"


def test_a_services_user_and_umask_reach_both_inits() -> None:
    service = Service(name="xenlive-x", about="x", command=("/usr/bin/x", "--flag"), user="nobody", umask=0o027)
    run = runit_run(service).splitlines()
    assert run[-2:] == ["umask 027", "exec chpst -u nobody /usr/bin/x --flag"]
    unit = systemd_unit(service).splitlines()
    assert {"User=nobody", "UMask=0027", "ExecStart=/usr/bin/x --flag"} <= set(unit)


def test_etc_motd_links_to_the_boot_greeting_unless_an_overlay_has_a_motd(tmp_path: Path) -> None:
    (tmp_path / "overlays" / "site" / "etc").mkdir(parents=True)
    (tmp_path / "overlays" / "site" / "etc" / "motd").write_text("our own welcome\n")
    for overlays, expected in (("[]", None), ("[site]", "our own welcome\n")):
        recipe = tmp_path / f"motd{len(overlays)}.yaml"
        recipe.write_text(f"iso: {{name: demo}}\ndom0: {{overlays: {overlays}}}\n")
        tree = tmp_path / f"tree{len(overlays)}"
        install_config(tree, load_recipe(recipe))
        motd = tree / CONTRACT.MOTD.lstrip("/")
        if expected is None:
            assert os.readlink(motd) == CONTRACT.GREETING
        else:
            assert not motd.is_symlink() and motd.read_text() == expected
