"""Guest image recipes (guest-images/NAME.yaml): how one guest's disk, kernel and xl config are made.

Errors point into the guest image file itself, as `guest-images/NAME.yaml:line:column: key: message`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from xenlive.errors import Problem, RecipeError
from xenlive.yamlpos import Model, load_located, validate_located


class GuestImage(Model):
    """A guest image recipe: one YAML file under `guest-images/`, named by a guest's `image`. Paths in it are
    relative to the file's own directory."""

    builder: Literal["mmdebstrap"] = Field(
        "mmdebstrap", description="How the root filesystem is made: `mmdebstrap` installs Debian of dom0's suite."
    )
    description: str = Field("", description="One line shown by `show` and written to the manifest.")
    packages: list[str] = Field([], description="Debian packages installed besides the base system and kernel.")
    types: Annotated[list[Literal["pv", "pvh", "hvm"]], Field(min_length=1)] = Field(
        ["pv"], description="Guest types (xl.cfg `type`) this image can boot as; a guest's `type` must be one."
    )
    config: str = Field(
        description="xl config template (jinja2), relative to this file. It is rendered once per guest."
    )
    overlay: str | None = Field(
        None,
        description="Directory tree copied into the guest's root filesystem, relative to this file.",
        json_schema_extra={"default_text": "none"},
    )
    disk_free: Annotated[int, Field(ge=0)] = Field(
        256, description="Free space left in the guest's root filesystem.", json_schema_extra={"unit": "MiB"}
    )


class LoadedGuestImage(BaseModel):
    """A valid guest image recipe and the files it names (absolute paths)."""

    model_config = ConfigDict(frozen=True)

    path: Path
    name: str
    image: GuestImage
    config_template: Path
    overlay_dir: Path | None


def load_guest_image(path: Path) -> LoadedGuestImage:
    """Read and check one guest image recipe. Raises RecipeError with every problem in it."""
    image, problems = read_guest_image(Path(path))
    if image is None:
        raise RecipeError(problems)
    return image


def read_guest_image(path: Path) -> tuple[LoadedGuestImage | None, list[Problem]]:
    """Like load_guest_image, but returns the problems (for a recipe that collects them from many files)."""
    try:
        located = load_located(path)
    except RecipeError as exc:
        return None, exc.problems
    image, problems = validate_located(GuestImage, located)
    problems = located.problems + problems
    # The files are checked from the raw keys, so that they are reported along with any other error.
    config, overlay = located.data.get("config"), located.data.get("overlay")
    template = path.parent / config if isinstance(config, str) else None
    if template is not None and not template.is_file():
        problems.append(
            located.problem(("config",), f"template {template} not found", "the path is relative to this file")
        )
    overlay_dir = path.parent / overlay if isinstance(overlay, str) else None
    if overlay_dir is not None and not overlay_dir.is_dir():
        problems.append(
            located.problem(("overlay",), f"directory {overlay_dir} not found", "the path is relative to this file")
        )
    if image is None or template is None or problems:
        return None, problems
    return LoadedGuestImage(
        path=path.resolve(),
        name=path.stem,
        image=image,
        config_template=template.resolve(),
        overlay_dir=overlay_dir.resolve() if overlay_dir is not None else None,
    ), []
