"""Recipes: the typed, frozen model of what the user asked for, and load_recipe() that builds it.

Loading runs in steps, each reporting every problem it finds at once as file:line:column:
read the YAML files (keeping positions) -> follow `extends` and merge -> validate against the models ->
find the files named (overlays, guest images) -> cross-field checks. A YAML syntax error stops only the
file it is in; a check that needs a section runs whenever that section is valid, whatever else is wrong.
Field names follow xl.cfg(5) where one exists (memory, vcpus, type, cmdline).

The models are in recipe/model.py; loading runs through recipe/extends.py (the `extends` chain),
recipe/files.py (the files a recipe names) and recipe/checks.py (checks across keys).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from xenlive.errors import RecipeError
from xenlive.guestimage import LoadedGuestImage
from xenlive.project import Project
from xenlive.recipe.checks import check_guest_memory, check_guest_suites, cross_checks
from xenlive.recipe.extends import read_chain
from xenlive.recipe.files import check_local_mirrors, find_guest_images, find_overlays
from xenlive.recipe.model import (
    NAME_FORM,
    NAME_PATTERN,
    XEN_OVERHEAD_MIB,
    BootMenu,
    Dom0,
    Guest,
    Hypervisor,
    Iso,
    Machine,
    Mirror,
    Network,
    Recipe,
    Ssh,
    guest_mac,
)
from xenlive.suites import XEN_BY_SUITE
from xenlive.validation import problem_from_error

__all__ = [
    "NAME_FORM",
    "NAME_PATTERN",
    "XEN_BY_SUITE",
    "XEN_OVERHEAD_MIB",
    "BootMenu",
    "Dom0",
    "Guest",
    "Hypervisor",
    "Iso",
    "LoadedRecipe",
    "Machine",
    "Mirror",
    "Network",
    "Recipe",
    "Ssh",
    "guest_mac",
    "load_recipe",
]


class LoadedRecipe(BaseModel):
    """A recipe plus where it came from: the files it was read from and the files it refers to."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    path: Path  # as given
    files: list[Path]  # the recipe and every file it extends, child first, as given / relative to the child
    recipe: Recipe
    overlay_dirs: list[Path]  # resolved recipe overlays (not the built-in one), absolute
    guest_image_files: dict[str, Path]  # guest name -> guest image recipe file, absolute
    guest_images: dict[str, LoadedGuestImage]  # guest name -> its loaded guest image


def load_recipe(path: Path, allow: Sequence[Path] = ()) -> LoadedRecipe:
    """Read, merge, validate and cross-check a recipe. Raises RecipeError with every problem found.

    Every file it names must lie in its project (project.find_project_root()), xenlive's own data, or one
    of the directories in `allow` (xenlive.project)."""
    path = Path(path)
    project = Project.of(path, allow)
    chain = read_chain(path, project)
    located = chain.located
    recipe: Recipe | None = None
    problems = list(chain.problems)
    try:
        recipe = Recipe.model_validate(located.data)
    except ValidationError as exc:
        # With a broken `extends` chain, keys the parent would have given are missing: do not report those.
        problems += [
            problem_from_error(err, located, Recipe)
            for err in exc.errors()
            if chain.complete or err["type"] != "missing"
        ]
    overlays, overlay_problems = find_overlays(located, project)
    image_files, images, image_problems = find_guest_images(located, project)
    problems += overlay_problems + image_problems + check_local_mirrors(located, project)
    problems += cross_checks(located, chain.complete)
    problems += check_guest_memory(located, images) + check_guest_suites(located, images)
    if problems or recipe is None:
        raise RecipeError(problems)
    return LoadedRecipe(
        path=path,
        files=chain.files,
        recipe=recipe,
        overlay_dirs=overlays,
        guest_image_files=image_files,
        guest_images=images,
    )
