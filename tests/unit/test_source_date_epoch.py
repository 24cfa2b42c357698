"""Which time a build dates its output by (reproducible builds)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from xenlive.cli import environment_epoch
from xenlive.context import source_date_epoch


def test_the_recipe_wins_over_the_environment(tmp_path: Path) -> None:
    assert source_date_epoch(1700000000, 1600000000, [tmp_path / "r.yaml"]) == 1700000000


def test_the_environment_wins_over_git(tmp_path: Path) -> None:
    assert source_date_epoch(None, 1600000000, [tmp_path / "r.yaml"]) == 1600000000


def test_a_committed_recipe_is_dated_by_its_commit_and_an_uncommitted_one_by_0(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("iso:\n  name: t\n")
    assert source_date_epoch(None, None, [tmp_path / "r.yaml"]) == 0
    env = {"GIT_AUTHOR_DATE": "@1650000000 +0000", "GIT_COMMITTER_DATE": "@1650000000 +0000", "HOME": str(tmp_path)}
    for argv in (
        ["init", "-q"],
        ["add", "r.yaml"],
        ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "r"],
    ):
        subprocess.run(["git", *argv], cwd=tmp_path, env=env, check=True)
    assert source_date_epoch(None, None, [tmp_path / "r.yaml"]) == 1650000000


@pytest.mark.parametrize(("value", "epoch"), [("1600000000", 1600000000), ("", None), ("yesterday", None)])
def test_the_build_command_takes_source_date_epoch_from_its_environment_when_it_is_a_number(
    monkeypatch: pytest.MonkeyPatch, value: str, epoch: int | None
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", value)
    assert environment_epoch() == epoch
