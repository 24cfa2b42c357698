"""The dom0 config layer: xenlive's own overlay (and its files for dom0's init), the recipe's overlays and the
xl guest configs, as a small squashfs that dom0's initramfs stacks on top of the base root filesystem.

This is the only stage an overlay edit reruns besides the ISO (seconds, not minutes).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xenlive.cache import StageInputs
from xenlive.context import BuildContext, versions_of
from xenlive.contract import CONTRACT
from xenlive.fsutil import digest_tree, not_world_readable, sha256_file
from xenlive.paths import data_dir
from xenlive.recipe import Guest, LoadedRecipe, Recipe, guest_mac
from xenlive.render import render_template, render_tree
from xenlive.services import install_services, restrict_private_files
from xenlive.stages import StageResult, StageRunner
from xenlive.tools.squashfs import make_squashfs

STAGE_VERSION = 6  # 2: dom0's init (runit or systemd): its own overlay, and a console service per guest;
# 3: overlay files keep their modes; 4: dom0's services rendered from xenlive/services.py, private files 0600;
# 5: /etc/motd links to dom0's greeting unless an overlay has a motd; 6: XEN_BIN from the Xen dom0 installed (xen_lib)
TOOLS = ("mksquashfs",)
VERSIONS = versions_of("mksquashfs")

XL_CONFIG_DIR = CONTRACT.XL_CONFIGS.lstrip("/")  # xenlive-boot creates guests from here
VIF_SCRIPT = "/etc/xen/scripts/xenlive-vif"  # fast hotplug: attach to the bridge, nothing else


# What dom0's overlay `.j2` files can use, and nothing else (recipes/REFERENCE.md lists it from here).
RECIPE_IN_TEMPLATES = (
    "The recipe after `extends`, every default filled in. Its keys are attributes, as this reference names "
    "them (`recipe.dom0.hostname`, `recipe.guests[0].memory`); besides them only `recipe.network.network` "
    "(the subnet, as a small view: `.network_address`, `.broadcast_address`, `.netmask`, `.prefixlen`, "
    "`.num_addresses`, `.with_prefixlen`; it prints as `10.0.3.0/24`), "
    "`recipe.network.dom0_address()` and `recipe.network.guest_address(N)` (of guest N, from 0)."
)
OVERLAY_CONTEXT = {
    "recipe": RECIPE_IN_TEMPLATES,
    "images": "Guest name -> the name of its guest image (its file name without `.yaml`).",
    "left_out": "Guest name -> why the ISO has no image for it, for the guests left out (see `build --strict`).",
    "guest_macs": "Guest name -> the MAC address of its vif (00:16:3e and three bytes of the name's sha256).",
    "contract": "dom0's runtime contract (xenlive/contract.py): the paths and names dom0's scripts use, "
    "e.g. `contract.HOSTS_DIR`, `contract.GUEST_COLUMNS`.",
    "xen_lib": "Where the Xen installed in dom0 keeps its programs (`xl`, `xenstored`, `xen-init-dom0`), as the "
    "dom0-rootfs stage found it: `/usr/lib/xen-X.Y` of the suite's Xen (trixie: `/usr/lib/xen-4.20`).",
}
# What a guest's xl config template can use, and nothing else.
GUEST_CONFIG_CONTEXT = {
    **OVERLAY_CONTEXT,
    "guest": "The guest, an entry of `guests` with every default filled in (`guest.name`, `guest.memory`, ...).",
    "init": "The init of a Debian guest's image (`runit` or `systemd`); none for other images.",
    "image_dir": "Where dom0 mounts the guest's image from the medium, with its kernel and initrd "
    "(`/run/xenlive/images/IMAGE`).",
    "disk": "The guest's copy-on-write disk in dom0 (`/dev/mapper/xenlive-NAME`).",
    "vif": "The xl `vif` spec of the guest's network interface (MAC, bridge, hotplug script); none without a network.",
    "peers": "The names of the other guests, which the guest resolves by DNS in its network check; empty "
    "without a network.",
}


def template_context(
    loaded: LoadedRecipe, left_out: Mapping[str, str] | None = None, xen_lib: str | None = None
) -> dict[str, Any]:
    """What overlay `.j2` files can use (OVERLAY_CONTEXT). `left_out`: guest name -> why the ISO does
    without it (its image could not be built); xenlive-boot reports those guests as skipped. `xen_lib`: where
    dom0's Xen keeps its programs, as the dom0-rootfs stage found it (default: where the suite's Xen puts
    them, for the tests that render templates without building dom0)."""
    return {
        "recipe": loaded.recipe,
        "images": {name: image.name for name, image in loaded.guest_images.items()},
        "left_out": dict(left_out or {}),
        "guest_macs": {guest.name: guest_mac(guest.name) for guest in loaded.recipe.guests},
        "contract": CONTRACT,
        "xen_lib": xen_lib or default_xen_lib(loaded.recipe),
    }


def default_xen_lib(recipe: Recipe) -> str:
    return f"/usr/lib/xen-{recipe.xen_version()}"


def guest_network(recipe: Recipe, guest: Guest, left_out: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What a guest config template needs for the network: its xl.cfg `vif` spec (None without a network)
    and its peers, the other guests it resolves by name as its network check: those dom0 starts at boot
    (autostart, and on the ISO). dnsmasq would answer for the others too, which proves nothing about them."""
    if not recipe.network.enabled:
        return {"vif": None, "peers": []}
    vif = f"mac={guest_mac(guest.name)},bridge={recipe.network.bridge},script={VIF_SCRIPT}"
    peers = [
        other.name
        for other in recipe.guests
        if other.name != guest.name and other.autostart and other.name not in (left_out or {})
    ]
    return {"vif": vif, "peers": peers}


def init_overlay(recipe: Recipe) -> Path:
    """xenlive's dom0 files for the recipe's dom0.init (services or units), laid in after overlays/xenlive."""
    return data_dir("overlays") / f"xenlive-{recipe.dom0.init}"


def guest_config_context(
    loaded: LoadedRecipe, guest: Guest, left_out: Mapping[str, str] | None = None, xen_lib: str | None = None
) -> dict[str, Any]:
    """What a guest's xl config template can use (GUEST_CONFIG_CONTEXT): the template context, the guest,
    where its image is mounted in dom0, its disk, and its network."""
    image = loaded.guest_images[guest.name]
    return {
        **template_context(loaded, left_out, xen_lib),
        "guest": guest,
        "init": image.builder.init(image.image),  # a Debian guest's: runit or systemd; None for the others
        "image_dir": CONTRACT.image_mount(image.name),
        "disk": CONTRACT.disk(guest.name),
        **guest_network(loaded.recipe, guest, left_out),
    }


def guest_config(
    loaded: LoadedRecipe, guest: Guest, left_out: Mapping[str, str] | None = None, xen_lib: str | None = None
) -> str:
    """The xl config of one guest: its image's template, rendered."""
    template = loaded.guest_images[guest.name].config_template
    return render_template(template, guest_config_context(loaded, guest, left_out, xen_lib))


def config_inputs(
    loaded: LoadedRecipe,
    context: BuildContext,
    left_out: Mapping[str, str] | None = None,
    xen_lib: str | None = None,
) -> StageInputs:
    """What the layer reads: the recipe as loaded (not its text: a comment changes nothing), the overlays and
    the guest config templates; and mksquashfs's version. Dated by the recipe (its iso.source_date_epoch, if it
    names one)."""
    files = {"overlays/xenlive": digest_tree(data_dir("overlays") / "xenlive", overlay=True)}
    files[f"overlays/{init_overlay(loaded.recipe).name}"] = digest_tree(init_overlay(loaded.recipe), overlay=True)
    for i, overlay in enumerate(loaded.overlay_dirs):
        files[f"overlay {i}: {overlay.name}"] = digest_tree(overlay, overlay=True)
    files["guest config templates"] = {
        f"{image.name}/{image.config_template.name}": sha256_file(image.config_template)
        for image in loaded.guest_images.values()
    }
    return StageInputs(
        stage="dom0-config",
        version=STAGE_VERSION,
        settings={
            "recipe": loaded.recipe.model_dump(mode="json"),
            "left_out": dict(left_out or {}),
            **context.versions_for(VERSIONS),
            "xen_lib": xen_lib or default_xen_lib(loaded.recipe),
        },
        files=files,
        upstream={},
        epoch=context.dates.of_recipe(),
    )


def install_config(
    tree: Path, loaded: LoadedRecipe, left_out: Mapping[str, str] | None = None, xen_lib: str | None = None
) -> list[str]:
    """The layer's tree: xenlive's overlay, its init's, dom0's services (xenlive/services.py), the recipe's
    overlays and the xl guest configs; root's private files made 0600. The relative paths written."""
    context = template_context(loaded, left_out, xen_lib)
    written = render_tree(data_dir("overlays") / "xenlive", tree, context)
    written += render_tree(init_overlay(loaded.recipe), tree, context)
    written += install_services(tree, loaded.recipe)
    for overlay in loaded.overlay_dirs:
        written += render_tree(overlay, tree, context)
    written += link_motd(tree)
    (tree / XL_CONFIG_DIR).mkdir(parents=True, exist_ok=True)
    for guest in loaded.recipe.guests:
        (tree / XL_CONFIG_DIR / f"{guest.name}.cfg").write_text(guest_config(loaded, guest, left_out, xen_lib))
        written.append(f"{XL_CONFIG_DIR}/{guest.name}.cfg")
    restrict_private_files(tree)
    return written


def link_motd(tree: Path) -> list[str]:
    """/etc/motd as a link to the greeting dom0 makes at boot (xenlive-greeting), unless an overlay laid a motd
    of its own: that one stays."""
    motd = tree / CONTRACT.MOTD.lstrip("/")
    if motd.exists() or motd.is_symlink():
        return []
    motd.parent.mkdir(parents=True, exist_ok=True)
    motd.symlink_to(CONTRACT.GREETING)
    return [CONTRACT.MOTD.lstrip("/")]


def build_dom0_config(
    runner: StageRunner, loaded: LoadedRecipe, left_out: Mapping[str, str] | None = None, xen_lib: str | None = None
) -> StageResult:
    """`left_out`: guest name -> why the ISO does without it. `xen_lib`: where dom0's Xen keeps its programs
    (the dom0-rootfs stage's fact)."""
    inputs = config_inputs(loaded, runner.context, left_out, xen_lib)
    epoch = inputs.date

    def build(work: Path) -> dict[str, Any]:
        tree = work / "tree"
        written = install_config(tree, loaded, left_out, xen_lib)
        make_squashfs(tree, work / "xenlive.squashfs", all_root=True, epoch=epoch)
        # An overlay's 0600 key stays so; the entry says which files others cannot read.
        return {"files": sorted(written), "not_world_readable": not_world_readable(tree)}

    return runner.run(inputs, "dom0 config layer (overlays, guest configs)", build)
