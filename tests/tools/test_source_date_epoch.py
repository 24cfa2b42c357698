"""Stages shared across git commits of a recipe, with the real git: a new uncommitted recipe shares the
stages of a committed one, and committing a comment reruns no stage."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.unit.test_source_date_epoch import copy_project, stage_inputs
from xenlive.recipe import load_recipe

pytestmark = pytest.mark.tools


def test_a_new_uncommitted_recipe_shares_the_stages_of_a_committed_one(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    git(project, "init", "-q")
    git(project, "add", ".")
    commit(project, "recipes", 1650000000)
    committed = stage_inputs(load_recipe(project / "recipes" / "ci.yaml"))
    (project / "recipes" / "new.yaml").write_text((project / "recipes" / "ci.yaml").read_text())
    uncommitted = stage_inputs(load_recipe(project / "recipes" / "new.yaml"))
    assert {name: i.key for name, i in uncommitted.items()} == {name: i.key for name, i in committed.items()}


def test_committing_a_comment_to_a_recipe_reruns_no_stage(tmp_path: Path) -> None:
    """No stage records the recipe's text or its commit: a comment changes no stage's key (not even those of
    the config layer and the ISO, which record the recipe as loaded)."""
    project = copy_project(tmp_path / "project")
    git(project, "init", "-q")
    git(project, "add", ".")
    commit(project, "recipes", 1650000000)
    recipe = project / "recipes" / "ci.yaml"
    before = stage_inputs(load_recipe(recipe))
    recipe.write_text(recipe.read_text() + "# a comment, committed a year later\n")
    git(project, "add", ".")
    commit(project, "a comment", 1680000000)
    after = stage_inputs(load_recipe(recipe))
    assert {name: i.key for name, i in after.items()} == {name: i.key for name, i in before.items()}


def git(cwd: Path, *argv: str, env: dict[str, str] | None = None) -> None:
    subprocess.run(["git", *argv], cwd=cwd, env={"HOME": str(cwd), "PATH": "/usr/bin:/bin", **(env or {})}, check=True)


def commit(cwd: Path, message: str, when: int) -> None:
    dates = {"GIT_AUTHOR_DATE": f"@{when} +0000", "GIT_COMMITTER_DATE": f"@{when} +0000"}
    git(cwd, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message, env=dates)
