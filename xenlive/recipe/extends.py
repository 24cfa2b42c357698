"""`extends`: a recipe and the recipes it extends, read in turn and merged, child over parent."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xenlive.errors import Problem, RecipeError
from xenlive.inputs import UnusableFile, check_input_file, path_refusal
from xenlive.paths import data_dir
from xenlive.project import Project
from xenlive.yamlpos import KeyPath, Located, load_located

# Recipes in one `extends` chain, the recipe included: each may hold yamlpos.MAX_VALUES values.
MAX_EXTENDS = 16


@dataclass
class Chain:
    located: Located  # all files merged, child on top
    files: list[Path]  # child first
    problems: list[Problem]
    complete: bool  # every file of the chain was read


def read_chain(path: Path, project: Project) -> Chain:
    """Read a recipe and the recipes it extends, each in `project`. Raises RecipeError only if the recipe
    itself is unusable."""
    layers: list[Located] = []
    files: list[Path] = []
    problems: list[Problem] = []
    complete = True
    current = path
    while True:
        try:
            located = load_located(current)
        except RecipeError as exc:
            if not layers:
                raise
            problems += exc.problems
            complete = False
            break
        layers.append(located)
        files.append(current)
        problems += located.problems
        if "extends" not in located.data:
            break
        parent = _parent_path(current, located.data.pop("extends"), files, located, project)
        if isinstance(parent, Problem):
            problems.append(parent)
            complete = False
            break
        current = parent
    merged = layers[-1]
    for child in reversed(layers[:-1]):
        merged = _merge(merged, child)
    return Chain(merged, files, problems, complete)


def _parent_path(child: Path, name: Any, chain: list[Path], located: Located, project: Project) -> Path | Problem:
    """The file `extends: NAME` in `child` names, or the problem with it."""
    at: KeyPath = ("extends",)
    if not isinstance(name, str) or not name:
        return located.problem(at, "must be the path of a recipe file", "e.g. `extends: base.yaml`")
    parent = Path(os.path.normpath(child.parent / name))
    refused = path_refusal(parent)
    if refused is not None:
        return located.problem(at, f"parent recipe {parent} {refused[0]}", refused[1])
    shipped = data_dir("recipes") / name
    if not parent.exists() and "/" not in name and shipped.is_file():
        parent = shipped  # a recipe xenlive ships (base.yaml, xen-demo.yaml...), from anywhere
    if len(chain) >= MAX_EXTENDS:
        return located.problem(
            at, f"{name} would make a chain of more than {MAX_EXTENDS} recipes", "a recipe extends one or two others"
        )
    if os.path.realpath(parent) in [os.path.realpath(p) for p in chain]:
        cycle = " -> ".join(str(p) for p in [*chain, parent])
        return located.problem(at, f"cycle: {cycle}", "a recipe cannot extend itself, even indirectly")
    if parent.is_dir():
        return located.problem(at, f"{parent} is a directory, not a recipe file", "name a .yaml file")
    if parent.is_symlink() and not parent.exists():
        return located.problem(
            at, f"parent recipe {parent} is a symbolic link that leads nowhere (a loop, or a missing file)", ""
        )
    if not parent.exists():
        return located.problem(
            at,
            f"parent recipe {parent} not found",
            "the path is relative to this recipe's directory, or the name of a recipe xenlive ships, such as base.yaml",
        )
    try:
        check_input_file(parent)
    except UnusableFile as exc:
        return located.problem(at, f"{parent} {exc.reason}", exc.hint)
    except OSError:
        pass  # reading it says what is wrong
    refused = project.refusal(parent)
    if refused is not None:
        return located.problem(at, f"parent recipe {parent} {refused[0]}", refused[1])
    return parent


def _merge(base: Located, child: Located) -> Located:
    """Deep-merge mappings (child keys win); a list or scalar from the child replaces the parent's."""
    merged = Located(None, dict(base.values), dict(base.keys), dict(base.texts), [])
    replaced: list[KeyPath] = []

    def merge(a: Any, b: Any, at: KeyPath) -> Any:
        if isinstance(a, dict) and isinstance(b, dict):
            out = dict(a)
            for key, value in b.items():
                out[key] = merge(a[key], value, (*at, key)) if key in a else value
            return out
        replaced.append(at)
        merged.texts.pop(at, None)
        return b

    merged.data = merge(base.data, child.data, ())
    merged.forget_below(*replaced)  # replaced wholesale: the parent's positions under them are stale
    merged.values.update(child.values)
    merged.keys.update(child.keys)
    merged.texts.update(child.texts)
    return merged
