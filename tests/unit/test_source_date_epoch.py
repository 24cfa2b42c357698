"""Which time a build dates its output by (reproducible builds)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from xenlive.pipeline import source_date_epoch
from xenlive.recipe import load_recipe

RECIPE = "iso:\n  name: t\n"


def test_the_recipe_wins_over_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "r.yaml").write_text(RECIPE + "  source_date_epoch: 1700000000\n")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1600000000")
    assert source_date_epoch(load_recipe(tmp_path / "r.yaml")) == 1700000000


def test_the_environment_wins_over_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "r.yaml").write_text(RECIPE)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1600000000")
    assert source_date_epoch(load_recipe(tmp_path / "r.yaml")) == 1600000000


def test_a_committed_recipe_is_dated_by_its_commit_and_an_uncommitted_one_by_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    (tmp_path / "r.yaml").write_text(RECIPE)
    assert source_date_epoch(load_recipe(tmp_path / "r.yaml")) == 0
    env = {"GIT_AUTHOR_DATE": "@1650000000 +0000", "GIT_COMMITTER_DATE": "@1650000000 +0000", "HOME": str(tmp_path)}
    for argv in (
        ["init", "-q"],
        ["add", "r.yaml"],
        ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "r"],
    ):
        subprocess.run(["git", *argv], cwd=tmp_path, env=env, check=True)
    assert source_date_epoch(load_recipe(tmp_path / "r.yaml")) == 1650000000
