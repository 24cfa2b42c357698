"""The shipped xl config templates on a network, rendered as the build renders them (stages/config.py):
every guest, whatever its OS, gets its vif on the recipe's bridge with the MAC that dnsmasq in dom0 hands
its fixed address to, and the names of the other guests to resolve where its OS can read them from the
command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.standins import loaded_recipe
from xenlive.recipe import guest_mac
from xenlive.stages.config import guest_config

IMAGES = Path(__file__).resolve().parents[2] / "guest-images"

# template, guest type, whether the guest reads xenlive.peers (NetBSD PV and FreeBSD HVM cannot)
SHIPPED = [
    ("debian.cfg.j2", "pv", True),
    ("debian.cfg.j2", "pvh", True),
    ("freebsd.cfg.j2", "pvh", True),
    ("freebsd.cfg.j2", "hvm", False),
    ("netbsd.cfg.j2", "pv", False),
]


def render(template: str, guest_type: str, *, network: bool) -> str:
    loaded = loaded_recipe(
        {
            "iso": {"name": "t"},
            "network": {"enabled": network, "bridge": "br7"},
            "guests": [
                {"name": "one", "image": "x", "type": guest_type},
                {"name": "two", "image": "y", "type": "pv"},
            ],
        },
        {"x": IMAGES / template, "y": IMAGES / "debian.cfg.j2"},
    )
    return guest_config(loaded, loaded.recipe.guests[0])


@pytest.mark.parametrize(("template", "guest_type", "reads_peers"), SHIPPED)
def test_each_guest_gets_its_vif_on_the_bridge_with_its_stable_mac(
    template: str, guest_type: str, reads_peers: bool
) -> None:
    text = render(template, guest_type, network=True)
    vifs = [line for line in text.splitlines() if line.startswith("vif =")]
    assert vifs == [f'vif = [ "mac={guest_mac("one")},bridge=br7,script=/etc/xen/scripts/xenlive-vif" ]']
    assert ("xenlive.peers=two" in text) == reads_peers


@pytest.mark.parametrize(("template", "guest_type", "reads_peers"), SHIPPED)
def test_without_a_network_no_guest_gets_a_vif(template: str, guest_type: str, reads_peers: bool) -> None:
    text = render(template, guest_type, network=False)
    assert "vif" not in text and "xenlive.peers" not in text


def test_templates_get_exactly_the_context_the_reference_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    from xenlive.builders import files
    from xenlive.stages import iso
    from xenlive.stages.config import GUEST_CONFIG_CONTEXT, OVERLAY_CONTEXT, guest_config_context, template_context

    loaded = loaded_recipe(
        {"iso": {"name": "t"}, "guests": [{"name": "one", "image": "x"}]}, {"x": IMAGES / "debian.cfg.j2"}
    )
    assert set(template_context(loaded)) == set(OVERLAY_CONTEXT)
    assert set(guest_config_context(loaded, loaded.recipe.guests[0])) == set(GUEST_CONFIG_CONTEXT)
    seen: list[set[str]] = []
    monkeypatch.setattr(iso, "render_template", lambda path, context: seen.append(set(context)) or "")
    iso.grub_config(loaded)
    monkeypatch.setattr(files, "render_tree", lambda src, dst, context: seen.append(set(context)) or [])
    job = type("Job", (), {"overlay": Path("/overlay"), "name": "netbsd"})()
    files.install_overlay(job, Path("/tree"))  # type: ignore[arg-type]
    assert seen == [set(iso.GRUB_CONTEXT), set(files.IMAGE_OVERLAY_CONTEXT)]


def test_a_guest_resolves_only_the_peers_dom0_starts() -> None:
    """dnsmasq answers for every guest of the recipe: a peer that is not started (autostart: false) or not
    on the ISO (left out) would resolve whatever happened to it, so it is not a peer to check."""
    loaded = loaded_recipe(
        {
            "iso": {"name": "t"},
            "guests": [
                {"name": "one", "image": "x"},
                {"name": "two", "image": "x"},
                {"name": "later", "image": "x", "autostart": False},
                {"name": "gone", "image": "x"},
            ],
        },
        {"x": IMAGES / "debian.cfg.j2"},
    )
    text = guest_config(loaded, loaded.recipe.guests[0], {"gone": "its files could not be downloaded"})
    assert "xenlive.peers=two " in text


@pytest.mark.parametrize(("init", "hostname"), [("runit", "xenlive.hostname=one"), ("systemd", "systemd.hostname=one")])
def test_a_debian_guest_gets_its_host_name_where_its_init_reads_it(init: str, hostname: str) -> None:
    loaded = loaded_recipe(
        {"iso": {"name": "t"}, "guests": [{"name": "one", "image": "x"}]}, {"x": IMAGES / "debian.cfg.j2"}
    )
    image = loaded.guest_images["one"]
    loaded = loaded.model_copy(
        update={
            "guest_images": {"one": image.model_copy(update={"image": image.image.model_copy(update={"init": init})})}
        }
    )
    assert f" {hostname} " in guest_config(loaded, loaded.recipe.guests[0])
