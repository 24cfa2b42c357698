"""Shipped recipes can be named from any directory (`xenlive build xen-demo`, `xenlive validate xen-demo.yaml`);
a real file of that name wins; `xenlive recipes` lists them, one line each."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from xenlive import cli, pipeline
from xenlive.paths import data_dir, find_recipe, shipped_recipes

SHIPPED = data_dir("recipes")


@pytest.fixture
def elsewhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_validate_names_a_shipped_recipe_from_another_directory(elsewhere: Path) -> None:
    for name in ("xen-demo.yaml", "xen-demo"):
        result = CliRunner().invoke(cli.main, ["validate", name])
        assert result.exit_code == 0, result.output
        assert result.output == f"{SHIPPED / 'xen-demo.yaml'}: ok (3 guest(s))\n"


def test_build_takes_a_shipped_recipe_by_name(elsewhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[Path] = []

    def build_iso(loaded: object, options: object) -> None:
        built.append(loaded.path)  # type: ignore[attr-defined]
        raise KeyboardInterrupt  # enough: the recipe was found and loaded

    monkeypatch.setattr(pipeline, "build_iso", build_iso)
    result = CliRunner().invoke(cli.main, ["build", "ci"])
    assert result.exit_code == 130 and built == [SHIPPED / "ci.yaml"]


def test_a_file_in_the_directory_wins_over_a_shipped_recipe_of_its_name(elsewhere: Path) -> None:
    (elsewhere / "xen-demo.yaml").write_text("extends: ci.yaml\n")
    result = CliRunner().invoke(cli.main, ["validate", "xen-demo.yaml"])
    assert result.output == "xen-demo.yaml: ok (1 guest(s))\n"
    assert find_recipe(Path("xen-demo.yaml")) == Path("xen-demo.yaml")


def test_a_path_with_a_directory_is_never_looked_up_among_the_shipped_recipes(elsewhere: Path) -> None:
    assert find_recipe(Path("recipes/xen-demo.yaml")) == Path("recipes/xen-demo.yaml")
    assert find_recipe(Path("no-such-recipe")) == Path("no-such-recipe")
    result = CliRunner().invoke(cli.main, ["validate", "no-such-recipe"])
    assert result.exit_code == 2 and "file not found" in result.output


def test_recipes_lists_each_shipped_recipe_with_its_first_comment_line() -> None:
    result = CliRunner().invoke(cli.main, ["recipes"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines] == list(shipped_recipes()) and len(lines) >= 6
    assert any(
        re.fullmatch(r"ci +The small recipe the boot test builds: dom0 plus one Debian PV guest\.", line)
        for line in lines
    )
    assert all(len(line.split(maxsplit=1)) == 2 for line in lines)  # every shipped recipe says what it is
