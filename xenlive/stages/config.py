"""The dom0 config layer: xenlive's own overlay, the recipe's overlays and the xl guest configs,
as a small squashfs that live-boot stacks on top of the base root filesystem.

This is the only stage an overlay edit reruns besides the ISO (seconds, not minutes).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xenlive.cache import StageInputs
from xenlive.fsutil import digest_tree, sha256_file
from xenlive.paths import data_dir
from xenlive.recipe import Guest, LoadedRecipe, Recipe, guest_mac
from xenlive.render import render_template, render_tree
from xenlive.stages import StageResult, StageRunner
from xenlive.tools.squashfs import make_squashfs

STAGE_VERSION = 1
TOOLS = ("mksquashfs",)

XL_CONFIG_DIR = "etc/xen/xenlive"  # xenlive-boot creates guests from here
IMAGE_MOUNTS = "/run/xenlive/images"  # where xenlive-boot mounts each guest image
VIF_SCRIPT = "/etc/xen/scripts/xenlive-vif"  # fast hotplug: attach to the bridge, nothing else


def template_context(loaded: LoadedRecipe, left_out: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What overlay `.j2` files and guest config templates can use. `left_out`: guest name -> why the ISO
    does without it (its image could not be built); xenlive-boot reports those guests as skipped."""
    return {
        "recipe": loaded.recipe,
        "images": {name: image.name for name, image in loaded.guest_images.items()},
        "left_out": dict(left_out or {}),
        "guest_macs": {guest.name: guest_mac(guest.name) for guest in loaded.recipe.guests},
    }


def guest_network(recipe: Recipe, guest: Guest) -> dict[str, Any]:
    """What a guest config template needs for the network: its xl.cfg `vif` spec (None without a network)
    and the other guests' names, which the guest resolves by DNS as its network check."""
    if not recipe.network.enabled:
        return {"vif": None, "peers": []}
    vif = f"mac={guest_mac(guest.name)},bridge={recipe.network.bridge},script={VIF_SCRIPT}"
    return {"vif": vif, "peers": [other.name for other in recipe.guests if other.name != guest.name]}


def guest_config_context(
    loaded: LoadedRecipe, guest: Guest, left_out: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """What a guest's xl config template can use: the template context, the guest, where its image is
    mounted in dom0, its disk, and its network."""
    image = loaded.guest_images[guest.name]
    return {
        **template_context(loaded, left_out),
        "guest": guest,
        "image_dir": f"{IMAGE_MOUNTS}/{image.name}",
        "disk": f"/dev/mapper/xenlive-{guest.name}",
        **guest_network(loaded.recipe, guest),
    }


def guest_config(loaded: LoadedRecipe, guest: Guest, left_out: Mapping[str, str] | None = None) -> str:
    """The xl config of one guest: its image's template, rendered."""
    template = loaded.guest_images[guest.name].config_template
    return render_template(template, guest_config_context(loaded, guest, left_out))


def config_inputs(loaded: LoadedRecipe, left_out: Mapping[str, str] | None = None) -> StageInputs:
    files = {"overlays/xenlive": digest_tree(data_dir("overlays") / "xenlive")}
    for i, overlay in enumerate(loaded.overlay_dirs):
        files[f"overlay {i}: {overlay.name}"] = digest_tree(overlay)
    files["guest config templates"] = {
        f"{image.name}/{image.config_template.name}": sha256_file(image.config_template)
        for image in loaded.guest_images.values()
    }
    return StageInputs(
        stage="dom0-config",
        version=STAGE_VERSION,
        settings={"recipe": loaded.recipe.model_dump(mode="json"), "left_out": dict(left_out or {})},
        files=files,
        upstream={},
    )


def build_dom0_config(
    runner: StageRunner, loaded: LoadedRecipe, left_out: Mapping[str, str] | None = None
) -> StageResult:
    """`left_out`: guest name -> why the ISO does without it."""
    inputs = config_inputs(loaded, left_out)
    context = template_context(loaded, left_out)

    def build(work: Path) -> dict[str, Any]:
        tree = work / "tree"
        written = render_tree(data_dir("overlays") / "xenlive", tree, context)
        for overlay in loaded.overlay_dirs:
            written += render_tree(overlay, tree, context)
        (tree / XL_CONFIG_DIR).mkdir(parents=True, exist_ok=True)
        for guest in loaded.recipe.guests:
            (tree / XL_CONFIG_DIR / f"{guest.name}.cfg").write_text(guest_config(loaded, guest, left_out))
            written.append(f"{XL_CONFIG_DIR}/{guest.name}.cfg")
        make_squashfs(tree, work / "xenlive.squashfs", all_root=True, epoch=runner.context.epoch)
        return {"files": sorted(written)}

    return runner.run(inputs, "dom0 config layer (overlays, guest configs)", build)
