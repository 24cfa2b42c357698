"""The files a recipe names: overlays and guest image recipes, looked up beside the recipe, one directory up,
then among those xenlive ships (installed with the package, or in its checkout): so that a recipe anywhere can
name `image: debian` or a shipped overlay."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from xenlive.errors import Problem
from xenlive.guestimage import LoadedGuestImage, read_guest_image
from xenlive.inputs import UnusableFile, check_input_file, path_refusal
from xenlive.paths import data_dir
from xenlive.project import Project, find_project_root
from xenlive.recipe.model import Dom0, Guest, Mirror
from xenlive.recipe.valid import guests_of, section, valid_value
from xenlive.yamlpos import KeyPath, Located


def project_dirs(recipe_path: Path) -> list[Path]:
    """Where names in a recipe (`overlays`, `image`) are looked up: the recipe's directory, then its parent.

    Paths stay relative when the recipe's path is, so that messages show them as the user would type them.
    """
    here = recipe_path.parent
    up = Path(os.path.normpath(here / os.pardir))
    return [here] if up == here else [here, up]


def project_root(recipe_path: Path) -> Path:
    """The root of a recipe's project, the tree every file it names must lie in: the nearest directory above
    it holding xenlive.project's MARKER, else the recipe's own directory (xenlive.project)."""
    return find_project_root(recipe_path)[0]


def search_dirs(recipe_path: Path, subdir: str) -> list[Path]:
    """The directories a name is looked up in, first match wins: e.g. recipes/guest-images, guest-images, then
    xenlive's own guest-images (unless it is one of those)."""
    found = [base / subdir for base in project_dirs(recipe_path)]
    shipped = data_dir(subdir)
    if all(not _same(shipped, directory) for directory in found):
        found.append(shipped)
    return found


def shown(directory: Path, subdir: str) -> str:
    """A search directory as messages name it: xenlive's own by what it is, not by where it is installed."""
    return f"xenlive's {subdir}" if directory == data_dir(subdir) else str(directory)


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def find_named(recipe_path: Path, subdir: str, name: str, suffix: str = "") -> Path | None:
    """Resolve a name like `debian` to e.g. guest-images/debian.yaml.

    A name containing '/' (or ending in `suffix`) is a path relative to the recipe's directory instead.
    """
    if _is_path(name, suffix):
        candidate = Path(os.path.normpath(recipe_path.parent / name))
        return candidate if _exists(candidate) else None
    for directory in search_dirs(recipe_path, subdir):
        candidate = directory / f"{name}{suffix}"
        if _exists(candidate):
            return candidate
    return None


def _is_path(name: str, suffix: str) -> bool:
    return "/" in name or bool(suffix and name.endswith(suffix))


def _exists(path: Path) -> bool:
    """Whether `path` exists; a name the file system refuses to look up (too long, say) does not."""
    return path_refusal(path) is None and path.exists()


def _find_file(located: Located, at: KeyPath, subdir: str, name: str, suffix: str) -> tuple[Path | None, str, str]:
    """Look up a name or path from the recipe at `at`: the file, or None and what to tell the user."""
    source = located.position(at).file
    refused = path_refusal(name if _is_path(name, suffix) else f"{name}{suffix}")
    if refused is not None:
        return None, f"{name} {refused[0]}", refused[1]
    found = find_named(source, subdir, name, suffix)
    if found is not None:
        return found, "", ""
    if _is_path(name, suffix):
        where = os.path.normpath(source.parent / name)
        return None, f"{where} not found", "a path is relative to the recipe's directory"
    names = [shown(d, subdir) for d in search_dirs(source, subdir)]
    looked = ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]
    return None, f"'{name}' not found in {looked}", _not_found_hint(source, subdir, name, suffix)


def _not_found_hint(recipe_path: Path, subdir: str, name: str, suffix: str) -> str:
    known: set[str] = set()
    for directory in search_dirs(recipe_path, subdir):
        if directory.is_dir():
            known |= {p.name.removesuffix(suffix) for p in directory.iterdir() if p.name.endswith(suffix)}
    close = difflib.get_close_matches(name, sorted(known), n=1)
    if close:
        return f"did you mean '{close[0]}'?"
    if known:
        return f"available: {', '.join(sorted(known))}"
    return f"put {name}{suffix} in {subdir}/ beside the recipe or one directory up"


def find_overlays(located: Located, project: Project) -> tuple[list[Path], list[Problem]]:
    problems: list[Problem] = []
    overlays: list[Path] = []
    for i, name in enumerate(valid_value(Dom0, section(located.data, "dom0"), "overlays") or []):
        at: KeyPath = ("dom0", "overlays", i)
        found, message, hint = _find_file(located, at, "overlays", name, "")
        refused = project.refusal(found) if found is not None else None
        if found is None:
            problems.append(located.problem(at, f"overlay {message}", hint))
        elif refused is not None:
            problems.append(located.problem(at, f"overlay {found} {refused[0]}", refused[1]))
        elif not found.is_dir():
            problems.append(located.problem(at, f"overlay {found} is not a directory", "name a directory tree"))
        else:
            overlays.append(found.resolve())
    return overlays, problems


def find_guest_images(
    located: Located, project: Project
) -> tuple[dict[str, Path], dict[str, LoadedGuestImage], list[Problem]]:
    problems: list[Problem] = []
    files: dict[str, Path] = {}
    images: dict[str, LoadedGuestImage] = {}
    read: dict[Path, LoadedGuestImage | None] = {}
    by_name: dict[str, tuple[Path, Path]] = {}  # image name -> its file (resolved, as found)
    for i, raw in enumerate(guests_of(located.data)):
        name, image_name = valid_value(Guest, raw, "name"), valid_value(Guest, raw, "image")
        if image_name is None:
            continue
        found, message, hint = _find_file(located, ("guests", i, "image"), "guest-images", image_name, ".yaml")
        if found is None:
            problems.append(located.problem(("guests", i, "image"), f"guest image {message}", hint))
            continue
        try:
            check_input_file(found)
        except UnusableFile as exc:
            problems.append(located.problem(("guests", i, "image"), f"guest image {found} {exc.reason}", exc.hint))
            continue
        except OSError:
            pass  # reading it says what is wrong
        refused = project.refusal(found)
        if refused is not None:
            problems.append(located.problem(("guests", i, "image"), f"guest image {found} {refused[0]}", refused[1]))
            continue
        key = found.resolve()
        # The image's name (its file name) names its build stage and its file on the ISO: one file per name.
        namesake = by_name.setdefault(key.stem, (key, found))
        if namesake[0] != key:
            problems.append(
                located.problem(
                    ("guests", i, "image"),
                    f"guest image {found} has the same name as {namesake[1]}, which another guest uses",
                    "rename one of the two files: an image is built and stored on the ISO under its file name",
                )
            )
            continue
        if key not in read:
            read[key], image_problems = read_guest_image(found, project)
            problems += image_problems
        image = read[key]
        if image is None:
            continue
        if name is not None:
            files[name] = key
            images[name] = image
        guest_type = valid_value(Guest, raw, "type")
        if guest_type is not None and guest_type not in image.image.types:
            problems.append(
                located.problem(
                    ("guests", i, "type"),
                    f"guest image '{image_name}' cannot boot as {guest_type}",
                    f"it supports: {', '.join(image.image.types)}",
                )
            )
    return files, images, problems


def check_local_mirrors(located: Located, project: Project) -> list[Problem]:
    """A file:// archive is a directory of the build host: it must lie in the project, as an overlay must."""
    problems: list[Problem] = []
    mirrors: list[Mirror] = valid_value(Dom0, section(located.data, "dom0"), "mirrors") or []
    for i, mirror in enumerate(mirrors):
        refused = project.url_refusal(mirror.url)
        if refused is not None:
            problems.append(located.problem(("dom0", "mirrors", i, "url"), f"{mirror.url} {refused[0]}", refused[1]))
    return problems
