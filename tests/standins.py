"""Stand-ins for finished stages, for tests of what a build does with them (publishing, the manifest, the
SBOM) without running them: dom0 and the ISO take minutes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xenlive.guestimage import GuestImage, LoadedGuestImage
from xenlive.publish import BuildOutputs
from xenlive.recipe import LoadedRecipe, Recipe
from xenlive.stages import StageResult
from xenlive.stages.dom0 import Dom0Rootfs
from xenlive.stages.guest import GuestImageArtifact, LeftOut
from xenlive.stages.iso import IsoImage

DOM0_INFO = {"kernel": "6.1.0-28-amd64", "xen": "4.17.3+10-g091466ba55-1", "linux_image": "6.1.119-1"}
# What the dom0-rootfs stage records besides those versions.
DOM0_FACTS = {**DOM0_INFO, "xen_lib": "/usr/lib/xen-4.17"}


def stage(root: Path, name: str, info: dict[str, object], files: dict[str, bytes | int]) -> StageResult:
    """A finished stage in root/NAME holding `files` (bytes, or a size for a sparse file of that size)."""
    path = root / name
    path.mkdir(parents=True)
    for file, content in files.items():
        if isinstance(content, int):
            with (path / file).open("wb") as out:
                out.truncate(content)
        else:
            (path / file).write_bytes(content)
    return StageResult(name, f"key-of-{name}", path, True, 0.0, "cached", info)


def outputs(
    root: Path,
    loaded: LoadedRecipe,
    *,
    dom0_packages: str = "bash\t5.2.15-2+b7\tamd64\n",
    images: dict[str, tuple[dict[str, object], str, int]] | None = None,
    iso: bytes = b"iso",
    left_out: tuple[LeftOut, ...] = (),
    epoch: int = 0,
) -> BuildOutputs:
    """BuildOutputs of stand-in stages. `images`: image name -> (what its builder recorded, its packages.tsv,
    the size of its squashfs)."""
    dom0 = Dom0Rootfs.of(stage(root, "dom0-rootfs", DOM0_FACTS, {"packages.tsv": dom0_packages.encode()}))
    artifacts = {
        name: GuestImageArtifact.of(
            name, stage(root, f"guest-{name}", info, {"packages.tsv": tsv.encode(), "image.squashfs": size})
        )
        for name, (info, tsv, size) in (images or {}).items()
    }
    config = stage(root, "dom0-config", {"files": []}, {"xenlive.squashfs": b"hsqs"})
    iso_name = f"{loaded.recipe.iso.name}.iso"
    (root / iso_name).write_bytes(iso)  # the ISO stage writes the ISO itself into OUTDIR, not into the cache
    iso_info = {"iso": iso_name, "sha256": "0" * 64, "size": len(iso)}
    iso_stage = StageResult("iso", "key-of-iso", root / iso_name, False, 0.0, "built", iso_info)
    stages = [dom0.stage, *(a.stage for a in artifacts.values()), config, iso_stage]
    return BuildOutputs(dom0, artifacts, config, IsoImage.of(iso_stage), list(left_out), stages, epoch, 1.0)


def loaded_recipe(data: dict[str, Any], templates: dict[str, Path], root: Path = Path("/recipes")) -> LoadedRecipe:
    """A loaded recipe from `data`, whose image NAME (each guest's `image`) is a guest image recipe with the
    xl config template templates[NAME] and every guest type; no file is read but the templates."""
    recipe = Recipe.model_validate(data)
    images = {
        name: LoadedGuestImage(
            path=root / "guest-images" / f"{name}.yaml",
            name=name,
            image=GuestImage.model_validate({"config": template.name, "types": ["pv", "pvh", "hvm"]}),
            config_template=template,
            overlay_dir=None,
        )
        for name, template in templates.items()
    }
    return LoadedRecipe(
        path=root / "r.yaml",
        files=[root / "r.yaml"],
        recipe=recipe,
        overlay_dirs=[],
        guest_image_files={guest.name: images[guest.image].path for guest in recipe.guests},
        guest_images={guest.name: images[guest.image] for guest in recipe.guests},
    )
