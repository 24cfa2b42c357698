"""`xenlive init`, `--version`, and names in a recipe that fall back to the data xenlive ships."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import xenlive.starter
from xenlive import __version__
from xenlive.cli import main
from xenlive.paths import data_dir
from xenlive.recipe import load_recipe
from xenlive.render import render_tree
from xenlive.stages.config import template_context
from xenlive.starter import StarterError, project_name, volume_label, write_starter


def test_init_writes_a_recipe_an_overlay_with_a_template_and_a_readme_that_validate(tmp_path: Path) -> None:
    starter = write_starter(tmp_path / "My Lab")
    assert starter.name == "My-Lab"
    assert sorted(p.relative_to(starter.directory).as_posix() for p in starter.written) == [
        "My-Lab.yaml",
        "README.md",
        "overlays/site/etc/motd.j2",
        "xenlive.project",
    ]
    loaded = load_recipe(starter.recipe)
    assert (loaded.recipe.iso.name, loaded.recipe.iso.volume_label) == ("My-Lab", "MY_LAB")
    assert loaded.overlay_dirs == [(starter.directory / "overlays" / "site").resolve()]
    assert loaded.guest_images["web"].path == (data_dir("guest-images") / "debian.yaml").resolve()
    # The overlay's template renders at build time, with the recipe.
    render_tree(loaded.overlay_dirs[0], tmp_path / "tree", template_context(loaded))
    assert "Welcome to My-Lab" in (tmp_path / "tree" / "etc" / "motd").read_text()
    assert "web (pv, 128 MiB)" in (tmp_path / "tree" / "etc" / "motd").read_text()
    assert "xenlive validate My-Lab.yaml" in (starter.directory / "README.md").read_text()


def test_init_writes_only_into_a_new_or_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine\n")
    with pytest.raises(StarterError, match="exists and is not an empty directory"):
        write_starter(tmp_path / "taken")
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine\n"
    with pytest.raises(StarterError, match="--name 'a b'"):
        write_starter(tmp_path / "new", "a b")


def test_names_and_labels_come_from_the_directory() -> None:
    assert project_name(Path("/x/my_iso.v2")) == "my_iso.v2"
    assert project_name(Path("/x/--")) == "xenlive-project"
    assert volume_label("my-iso.v2") == "MY_ISO_V2"


def test_the_init_and_version_verbs(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["init", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    assert f"next: xenlive validate {tmp_path / 'p' / 'p.yaml'}" in result.output
    again = CliRunner().invoke(main, ["init", str(tmp_path / "p")])
    assert again.exit_code == 2
    assert CliRunner().invoke(main, ["--version"]).output == f"xenlive, version {__version__}\n"


def test_a_recipe_outside_any_project_names_what_xenlive_ships(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("extends: xen-demo.yaml\niso:\n  name: r\ndom0:\n  overlays: [xenlive]\n")
    loaded = load_recipe(recipe)
    assert loaded.files[1] == data_dir("recipes") / "xen-demo.yaml"
    assert loaded.overlay_dirs == [(data_dir("overlays") / "xenlive").resolve()]
    assert {image.name for image in loaded.guest_images.values()} == {"debian", "freebsd"}


def test_the_projects_own_files_come_before_what_xenlive_ships(tmp_path: Path) -> None:
    (tmp_path / "guest-images").mkdir()
    (tmp_path / "guest-images" / "debian.yaml").write_text("config: mine.cfg.j2\n")
    (tmp_path / "guest-images" / "mine.cfg.j2").write_text('name = "{{ guest.name }}"\n')
    (tmp_path / "base.yaml").write_text("iso:\n  name: own-base\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text("extends: base.yaml\nguests:\n  - {name: g, image: debian}\n")
    loaded = load_recipe(recipe)
    assert loaded.recipe.iso.name == "own-base"
    assert loaded.guest_images["g"].path == (tmp_path / "guest-images" / "debian.yaml").resolve()


# ---- a symlink planted while init writes does not redirect its writes ------------------------------------


def plant_while_rendering(monkeypatch: pytest.MonkeyPatch, plant: Callable[[], None]) -> None:
    """Plant something in the starter's directory once init has checked it and before it writes (init renders
    its templates in between): as a racing local user could, but every time."""
    real = xenlive.starter.render_template
    planted: list[bool] = []

    def rendering(*args: Any, **kwargs: Any) -> str:
        if not planted:
            planted.append(True)
            plant()
        return real(*args, **kwargs)

    monkeypatch.setattr(xenlive.starter, "render_template", rendering)


def test_init_does_not_write_through_a_symlink_planted_at_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, victim = tmp_path / "p", tmp_path / "victim"
    plant_while_rendering(monkeypatch, lambda: (project / "README.md").symlink_to(victim))
    result = CliRunner().invoke(main, ["init", str(project)])
    assert not victim.exists()
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1
    assert f"{project / 'README.md'}" in result.stderr


def test_init_does_not_write_through_a_symlink_planted_at_a_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, elsewhere = tmp_path / "p", tmp_path / "elsewhere"
    elsewhere.mkdir()
    plant_while_rendering(monkeypatch, lambda: (project / "overlays").symlink_to(elsewhere))
    result = CliRunner().invoke(main, ["init", str(project)])
    assert list(elsewhere.iterdir()) == []
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1
    assert f"{project / 'overlays'}" in result.stderr
