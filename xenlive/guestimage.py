"""Guest image recipes (guest-images/NAME.yaml): how one guest's disk, kernel and xl config are made.

Errors point into the guest image file itself, as `guest-images/NAME.yaml:line:column: key: message`.
A `builder:` key picks how the disk is made (xenlive.builders); a builder may have its own section of keys
(`netbsd:`, `freebsd:`, `url:`), in which every file it downloads is pinned by URL and sha256 or sha512.
The model, GuestImage, is the common keys (xenlive.builders.base.ImageRecipe) plus the registered
builders' sections.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from xenlive.builders import BUILDERS
from xenlive.builders.base import Builder, ImageRecipe
from xenlive.errors import Problem, RecipeError
from xenlive.inputs import UnusableFile, check_input_file, path_refusal
from xenlive.pins import Pinned
from xenlive.project import Project
from xenlive.validation import validate_located
from xenlive.yamlpos import KeyPath, Located, Model, load_located

DEFAULT_BUILDER = "mmdebstrap"
NAMES: tuple[str, ...] = tuple(BUILDERS)
# Each builder's own section (under its name), and its model.
SECTIONS: dict[str, type[Model]] = {name: b.section for name, b in BUILDERS.items() if b.section is not None}
# Keys that only some builders use, with those builders: keys of the common model, and each builder's section.
BUILDER_KEYS: dict[str, tuple[str, ...]] = {
    **{
        key: tuple(name for name, builder in BUILDERS.items() if key in builder.keys)
        for key in dict.fromkeys(key for builder in BUILDERS.values() for key in builder.keys)
    },
    **{name: (name,) for name in SECTIONS},
}

GuestImage: type[ImageRecipe] = create_model(  # type: ignore[call-overload]
    "GuestImage",
    __base__=ImageRecipe,
    __doc__=ImageRecipe.__doc__,
    __module__=__name__,
    builder=(
        Literal[NAMES],
        Field(
            DEFAULT_BUILDER,
            description="How the root filesystem is made: "
            + "; ".join(f"`{name}` {builder.summary}" for name, builder in BUILDERS.items())
            + ".",
        ),
    ),
    **{
        name: (
            section | None,
            Field(None, description=BUILDERS[name].section_description, json_schema_extra={"default_text": "none"}),
        )
        for name, section in SECTIONS.items()
    },
)


class LoadedGuestImage(BaseModel):
    """A valid guest image recipe and the files it names (absolute paths)."""

    model_config = ConfigDict(frozen=True)

    path: Path
    name: str
    image: ImageRecipe  # a GuestImage
    config_template: Path
    overlay_dir: Path | None

    @property
    def builder(self) -> Builder:
        return BUILDERS[self.image.builder]

    def pinned_files(self) -> dict[str, Pinned]:
        """Every file this image downloads, by the role it plays ("kernel", "set base.tar.xz", "disk"...)."""
        return self.builder.pinned_files(self.image)


def load_guest_image(path: Path) -> LoadedGuestImage:
    """Read and check one guest image recipe. Raises RecipeError with every problem in it."""
    image, problems = read_guest_image(Path(path))
    if image is None:
        raise RecipeError(problems)
    return image


def read_guest_image(path: Path, project: Project | None = None) -> tuple[LoadedGuestImage | None, list[Problem]]:
    """Like load_guest_image, but returns the problems (for a recipe that collects them from many files).
    With a project, the template and overlay must lie in it (xenlive.project)."""
    try:
        located = load_located(path)
    except RecipeError as exc:
        return None, exc.problems
    image, problems = validate_located(GuestImage, located)
    problems = located.problems + problems + _builder_checks(located)
    if project is not None:
        problems += _local_pins(located, project)
    # The files are checked from the raw keys, so that they are reported along with any other error.
    config, overlay = located.data.get("config"), located.data.get("overlay")
    template = path.parent / config if isinstance(config, str) else None
    if template is not None:
        try:
            check_input_file(template)
        except FileNotFoundError:
            problems.append(
                located.problem(("config",), f"template {template} not found", "the path is relative to this file")
            )
        except UnusableFile as exc:
            problems.append(located.problem(("config",), f"template {template} {exc.reason}", exc.hint))
        except OSError as exc:
            problems.append(located.problem(("config",), f"template {template}: {exc.strerror}"))
        else:
            problems += _outside(located, project, ("config",), f"template {template}", template)
    overlay_dir = path.parent / overlay if isinstance(overlay, str) else None
    refused = path_refusal(overlay_dir) if overlay_dir is not None else None
    if overlay_dir is not None and refused is not None:
        problems.append(located.problem(("overlay",), f"directory {overlay_dir} {refused[0]}", refused[1]))
    elif overlay_dir is not None and not overlay_dir.is_dir():
        problems.append(
            located.problem(("overlay",), f"directory {overlay_dir} not found", "the path is relative to this file")
        )
    elif overlay_dir is not None:
        problems += _outside(located, project, ("overlay",), f"directory {overlay_dir}", overlay_dir)
    if image is None or template is None or problems:
        return None, problems
    return LoadedGuestImage(
        path=path.resolve(),
        name=path.stem,
        image=image,
        config_template=template.resolve(),
        overlay_dir=overlay_dir.resolve() if overlay_dir is not None else None,
    ), []


def _outside(located: Located, project: Project | None, at: KeyPath, what: str, path: Path) -> list[Problem]:
    refused = project.refusal(path) if project is not None else None
    return [] if refused is None else [located.problem(at, f"{what} {refused[0]}", refused[1])]


def _builder_checks(located: Located) -> list[Problem]:
    """Checks across keys, read from the raw data so that they run whatever else is wrong."""
    data = located.data
    builder = data.get("builder", DEFAULT_BUILDER)
    if builder not in BUILDERS:
        return _pin_checks(located)  # the validation reports the unknown builder
    problems = _pin_checks(located)
    for key, owners in BUILDER_KEYS.items():
        if key in data and builder not in owners:
            problems.append(
                located.problem(
                    (key,),
                    f"belongs to builder {' or '.join(owners)}, but this image uses builder {builder}",
                    f"remove `{key}:` or set `builder: {owners[0]}`",
                    at_key=True,
                )
            )
    section = builder if builder in SECTIONS else None
    if section is not None and section not in data:
        problems.append(
            located.problem(
                ("builder",),
                f"builder {builder} needs a `{section}:` section",
                f"add `{section}:` with the files to download (see recipes/REFERENCE.md)",
            )
        )
    allowed = BUILDERS[builder].types
    types = data.get("types", ["pv"])
    if allowed is not None and isinstance(types, list):
        for i, kind in enumerate(types):
            if isinstance(kind, str) and kind in ("pv", "pvh", "hvm") and kind not in allowed:
                problems.append(
                    located.problem(
                        ("types", i) if "types" in data else ("builder",),
                        f"a {builder} guest cannot boot as {kind}",
                        f"it supports: {', '.join(allowed)}; set `types: [{', '.join(allowed)}]`",
                    )
                )
    check, raw = BUILDERS[builder].checks, data.get(builder)
    if check is not None and isinstance(raw, dict):
        problems += check(located, raw, types if isinstance(types, list) else [])
    return problems


def _pinned_urls(located: Located) -> list[tuple[KeyPath, Any]]:
    """Every pinned file (a mapping with `url:`) of the builders' sections, with where it is."""
    found: list[tuple[KeyPath, Any]] = []

    def visit(value: Any, at: KeyPath) -> None:
        if isinstance(value, dict):
            if "url" in value and isinstance(value.get("url"), str):
                found.append((at, value))
            for key, item in value.items():
                visit(item, (*at, key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                visit(item, (*at, i))

    for section in SECTIONS:
        if section in located.data:
            visit(located.data[section], (section,))
    return found


def _local_pins(located: Located, project: Project) -> list[Problem]:
    """A file:// pin reads a file of the build host: it must lie in the project, as an overlay must."""
    problems: list[Problem] = []
    for at, value in _pinned_urls(located):
        refused = project.url_refusal(value["url"])
        if refused is not None:
            problems.append(located.problem((*at, "url"), f"{value['url']} {refused[0]}", refused[1]))
    return problems


def _pin_checks(located: Located) -> list[Problem]:
    """Every pinned file (a mapping with `url:`) needs exactly one of sha256 and sha512."""
    problems: list[Problem] = []
    for at, value in _pinned_urls(located):
        digests = [d for d in ("sha256", "sha512") if d in value]
        if not digests:
            problems.append(
                located.problem(
                    at,
                    f"{value['url']} is not pinned: give `sha256:` or `sha512:`",
                    "copy the digest from the release's SHA512 / CHECKSUM.SHA256 file; never download "
                    "a file to compute it",
                )
            )
        elif len(digests) == 2:
            problems.append(located.problem((*at, "sha512"), "give sha256 or sha512, not both", at_key=True))
    return problems
