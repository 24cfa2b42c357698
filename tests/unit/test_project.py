"""A recipe's project: the nearest directory above it marked by `xenlive.project`, else its own directory;
never the directory above it by default (issue 23: a project made in ~/myiso exposed the home directory)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from xenlive.errors import RecipeError
from xenlive.paths import data_dir
from xenlive.project import ALLOW_HINT
from xenlive.recipe import load_recipe
from xenlive.recipe.files import project_root
from xenlive.starter import write_starter


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_the_project_is_the_nearest_marked_directory_above_the_recipe_else_its_own_never_its_parent(
    tmp_path: Path,
) -> None:
    assert project_root(Path("/demo.yaml")) == Path("/")
    assert project_root(tmp_path / "recipes" / "demo.yaml") == tmp_path / "recipes"
    write(tmp_path / "top" / "xenlive.project", "")
    (tmp_path / "top" / "recipes" / "ci").mkdir(parents=True)
    assert project_root(tmp_path / "top" / "recipes" / "ci" / "demo.yaml") == tmp_path / "top"
    assert project_root(tmp_path / "top" / "demo.yaml") == tmp_path / "top"
    # A marker anyone could have written (as in /tmp) marks nothing.
    (tmp_path / "open" / "p").mkdir(parents=True)
    write(tmp_path / "open" / "xenlive.project", "")
    (tmp_path / "open").chmod(0o1777)
    assert project_root(tmp_path / "open" / "p" / "demo.yaml") == tmp_path / "open" / "p"


def test_this_checkout_and_an_installed_xenlives_data_are_one_project_each() -> None:
    top = data_dir("recipes").parent
    assert (top / "xenlive.project").is_file()
    assert project_root(data_dir("recipes") / "xen-demo.yaml") == top
    assert project_root(Path("recipes/xen-demo.yaml")) == Path(".")  # paths stay as the user gave them


def test_a_starter_project_in_the_home_directory_cannot_name_the_home_directorys_files(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write(home / ".ssh" / "id_ed25519", "PRIVATE KEY\n")
    starter = write_starter(home / "myiso")
    assert (starter.directory / "xenlive.project").is_file()
    recipe = starter.recipe
    recipe.write_text(recipe.read_text().replace("overlays: [site]", "overlays: [site, ../.ssh]"))
    with pytest.raises(RecipeError) as caught:
        load_recipe(recipe)
    (problem,) = caught.value.problems
    assert f"overlay {home / '.ssh'} is outside the recipe's project {starter.directory}/ " in str(problem)
    assert ALLOW_HINT in str(problem)
    # Without the marker, the project is the recipe's own directory: still not the home directory.
    (starter.directory / "xenlive.project").unlink()
    with pytest.raises(RecipeError, match=r"overlay .*/home/\.ssh is outside the recipe's project .*/myiso/ "):
        load_recipe(recipe)


def test_a_layout_that_relied_on_the_parent_directory_is_told_where_to_put_the_marker(tmp_path: Path) -> None:
    (tmp_path / "overlays" / "site").mkdir(parents=True)
    write(tmp_path / "recipes" / "r.yaml", "iso: {name: r}\ndom0: {overlays: [site]}\n")
    with pytest.raises(RecipeError) as caught:
        load_recipe(tmp_path / "recipes" / "r.yaml")
    (problem,) = caught.value.problems
    shown = str(problem)
    assert f"overlay {tmp_path / 'overlays' / 'site'} is outside the recipe's project {tmp_path / 'recipes'}/" in shown
    assert f"mark it with an empty file {tmp_path / 'xenlive.project'}" in shown
    write(tmp_path / "xenlive.project", "")
    assert load_recipe(tmp_path / "recipes" / "r.yaml").overlay_dirs == [tmp_path / "overlays" / "site"]


def prebuilt_image(project: Path, pins: dict[str, tuple[str, bytes]]) -> None:
    """guest-images/local.yaml of builder `url`, with the pins given (role -> (url, content hashed))."""
    text = "".join(
        f"  {role}:\n    url: {url}\n    sha256: {hashlib.sha256(body).hexdigest()}\n"
        for role, (url, body) in pins.items()
    )
    write(project / "guest-images" / "local.yaml", f"builder: url\nconfig: local.cfg.j2\nurl:\n{text}")
    write(project / "guest-images" / "local.cfg.j2", 'name = "{{ guest.name }}"\n')


def test_a_file_pin_is_confined_to_the_project_as_an_overlay_is(tmp_path: Path) -> None:
    project = tmp_path / "p"
    write(project / "xenlive.project", "")
    write(project / "images" / "disk.raw", "disk")
    recipe = write(project / "r.yaml", "iso: {name: r}\nguests: [{name: g, image: local}]\n")
    prebuilt_image(
        project,
        {
            "disk": ((project / "images" / "disk.raw").as_uri(), b"disk"),
            "kernel": ("file:///proc/self/status", b"?"),
            "ramdisk": ("file:///etc/hostname", Path("/etc/hostname").read_bytes()),
        },
    )
    with pytest.raises(RecipeError) as caught:
        load_recipe(recipe)
    shown = [str(problem) for problem in caught.value.problems]
    image = project / "guest-images" / "local.yaml"
    assert len(shown) == 2, shown
    assert shown[0].startswith(f"{image}:8:10: url.kernel.url: file:///proc/self/status is in /proc")
    assert shown[1].startswith(f"{image}:11:10: url.ramdisk.url: file:///etc/hostname is outside the recipe's project")
    with pytest.raises(RecipeError, match=r"file:///proc/self/status is in /proc"):
        load_recipe(recipe, allow=[Path("/etc"), Path("/proc")])
    # Inside the project it is fine; a file:// URL naming another host is not a local file.
    prebuilt_image(project, {"disk": ((project / "images" / "disk.raw").as_uri(), b"disk")})
    assert load_recipe(recipe).guest_images["g"].pinned_files()["disk"].url.startswith("file:///")
    prebuilt_image(project, {"disk": ("file://server/images/disk.raw", b"disk")})
    with pytest.raises(RecipeError, match=r"url.disk.url: file://server/images/disk.raw names another host"):
        load_recipe(recipe)


def test_a_file_mirror_is_confined_to_the_project_as_an_overlay_is(tmp_path: Path) -> None:
    project = tmp_path / "p"
    write(project / "xenlive.project", "")
    (project / "archive").mkdir()
    mirrors = "dom0:\n  mirrors:\n    - {url: 'URL', suites: [bookworm]}\n"
    recipe = write(project / "r.yaml", "iso: {name: r}\n" + mirrors.replace("URL", (project / "archive").as_uri()))
    assert load_recipe(recipe).recipe.dom0.mirrors is not None
    for url, says in (("file:///etc/apt", "is outside the recipe's project"), ("file:///proc/1", "is in /proc")):
        write(recipe, "iso: {name: r}\n" + mirrors.replace("URL", url))
        with pytest.raises(RecipeError) as caught:
            load_recipe(recipe)
        (problem,) = caught.value.problems
        assert str(problem).startswith(f"{recipe}:4:13: dom0.mirrors[0].url: {url} {says}")
