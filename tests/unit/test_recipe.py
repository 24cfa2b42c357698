"""load_recipe() and the YAML loader beneath it: what a recipe means, and where each problem is reported.

The error text of each kind of problem is pinned by the fixtures (test_cli_validate.py); these tests cover
what the fixtures cannot show: the loaded result the build uses, path resolution, YAML corner cases and
positions.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from xenlive.errors import Problem, RecipeError
from xenlive.guestimage import load_guest_image
from xenlive.recipe import XEN_OVERHEAD_MIB, LoadedRecipe, load_recipe
from xenlive.yamlpos import load_located

ROOT = Path(__file__).resolve().parents[2]
GOOD = ROOT / "tests" / "fixtures" / "good"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project directory with the fixture guest image `debian` (pv, pvh) and the overlay `extra`."""
    shutil.copytree(GOOD / "guest-images", tmp_path / "guest-images")
    shutil.copytree(GOOD / "overlays", tmp_path / "overlays")
    (tmp_path / "xenlive.project").write_text("")
    return tmp_path


def problems_of(path: Path) -> list[Problem]:
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    return caught.value.problems


def lines_of(path: Path) -> list[str]:
    return [str(p) for p in problems_of(path)]


# ---- what the build gets -----------------------------------------------------------------------------


def test_shipped_demo_recipe_loads_with_its_guest_images() -> None:
    loaded = load_recipe(ROOT / "recipes" / "xen-demo.yaml")
    assert isinstance(loaded, LoadedRecipe)
    assert loaded.files == [ROOT / "recipes" / "xen-demo.yaml", ROOT / "recipes" / "base.yaml"]
    assert [g.name for g in loaded.recipe.guests] == ["debian", "debian-pvh", "freebsd"]
    image_file = ROOT / "guest-images" / "debian.yaml"
    assert loaded.guest_image_files == {
        "debian": image_file,
        "debian-pvh": image_file,
        "freebsd": ROOT / "guest-images" / "freebsd.yaml",
    }
    image = loaded.guest_images["debian"]
    assert image.config_template == ROOT / "guest-images" / "debian.cfg.j2"
    assert image.overlay_dir == ROOT / "guest-images" / "debian"


def test_loaded_paths_are_absolute_even_from_a_relative_recipe_path(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(project / "r.yaml", "iso: {name: r}\ndom0: {overlays: [extra]}\nguests: [{name: g, image: debian}]\n")
    monkeypatch.chdir(project)
    loaded = load_recipe(Path("r.yaml"))
    assert loaded.path == Path("r.yaml")
    assert loaded.overlay_dirs == [project / "overlays" / "extra"]
    assert loaded.guest_image_files["g"] == project / "guest-images" / "debian.yaml"
    assert loaded.guest_images["g"].config_template.is_absolute()


def test_names_are_looked_up_beside_the_recipe_before_one_directory_up(project: Path) -> None:
    local = project / "recipes" / "guest-images"
    shutil.copytree(project / "guest-images", local)
    write(project / "recipes" / "r.yaml", "iso: {name: r}\nguests: [{name: g, image: debian}]\n")
    write(project / "recipes" / "up.yaml", "iso: {name: r}\ndom0: {overlays: [extra]}\n")
    assert load_recipe(project / "recipes" / "r.yaml").guest_image_files["g"] == local / "debian.yaml"
    assert load_recipe(project / "recipes" / "up.yaml").overlay_dirs == [project / "overlays" / "extra"]


def test_names_from_a_parent_recipe_resolve_from_the_parent_directory(tmp_path: Path) -> None:
    (tmp_path / "a" / "tree").mkdir(parents=True)
    write(tmp_path / "a" / "parent.yaml", "iso: {name: p}\ndom0: {overlays: [./tree]}\n")
    write(tmp_path / "b" / "child.yaml", "extends: ../a/parent.yaml\niso: {name: c}\n")
    (tmp_path / "xenlive.project").write_text("")
    loaded = load_recipe(tmp_path / "b" / "child.yaml")
    assert loaded.overlay_dirs == [tmp_path / "a" / "tree"]
    assert loaded.files == [tmp_path / "b" / "child.yaml", tmp_path / "a" / "parent.yaml"]


def test_extends_merges_three_levels_nearest_file_wins(project: Path) -> None:
    write(project / "a.yaml", "iso: {name: a, volume_label: A}\nmachine: {memory: 2048, vcpus: 4}\n")
    write(project / "b.yaml", "extends: a.yaml\nmachine: {vcpus: 3}\n")
    write(project / "c.yaml", "extends: b.yaml\niso: {name: c}\n")
    recipe = load_recipe(project / "c.yaml").recipe
    assert (recipe.iso.name, recipe.iso.volume_label) == ("c", "A")
    assert (recipe.machine.memory, recipe.machine.vcpus) == (2048, 3)


def test_only_autostart_guests_count_against_machine_memory(project: Path) -> None:
    room = 1024 - XEN_OVERHEAD_MIB - 512
    fits = f"""
        iso: {{name: m}}
        guests:
          - {{name: a, image: debian, memory: {room}}}
          - {{name: b, image: debian, memory: 4096, autostart: false}}
        """
    load_recipe(write(project / "fits.yaml", fits))  # exactly full: fine
    over = write(project / "over.yaml", fits.replace(f"memory: {room}", f"memory: {room + 1}"))
    assert [p.key for p in problems_of(over)] == ["guests"]


# ---- where problems are reported ---------------------------------------------------------------------


def test_problems_carry_file_line_column_and_are_sorted(project: Path) -> None:
    path = write(
        project / "r.yaml",
        """
        iso:
          name: r
        machine:
          vcpus: 0
        dom0:
          memory: lots
        """,
    )
    assert [(p.file, p.line, p.column, p.key) for p in problems_of(path)] == [
        (path, 4, 10, "machine.vcpus"),
        (path, 6, 11, "dom0.memory"),
    ]


def test_an_absolute_recipe_path_gives_absolute_paths_in_messages(project: Path) -> None:
    write(project / "parent.yaml", "iso:\n  name: p\n  colour: red\n")
    child = write(project / "child.yaml", "extends: parent.yaml\n")
    assert lines_of(child) == [
        f"{project / 'parent.yaml'}:3:3: iso.colour: unknown key (hint: allowed keys here: "
        "name, volume_label, boot_menu, source_date_epoch)"
    ]


def test_a_problem_in_a_parent_key_the_child_overrides_is_not_reported(project: Path) -> None:
    write(project / "parent.yaml", "iso: {name: p}\nmachine: {memory: lots}\n")
    child = write(project / "child.yaml", "extends: parent.yaml\nmachine: {memory: 2048}\n")
    assert load_recipe(child).recipe.machine.memory == 2048


def test_problems_in_a_guest_image_are_reported_once_in_its_file(project: Path) -> None:
    write(project / "guest-images" / "odd.yaml", "config: debian.cfg.j2\ntypes: [pv, xen]\n")
    path = write(project / "r.yaml", "iso: {name: r}\nguests: [{name: a, image: odd}, {name: b, image: odd}]\n")
    problems = problems_of(path)
    assert [(p.file.name, p.line, p.key) for p in problems] == [("odd.yaml", 2, "types[1]")]


def test_load_guest_image_alone_reports_every_problem_in_the_file(project: Path) -> None:
    path = write(project / "guest-images" / "bad.yaml", "config: nope.j2\noverlay: nowhere\ndisk_free: -1\n")
    with pytest.raises(RecipeError) as caught:
        load_guest_image(path)
    assert [(p.line, p.key) for p in caught.value.problems] == [(1, "config"), (2, "overlay"), (3, "disk_free")]


def test_a_recipe_that_cannot_be_read_at_all_is_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"iso:\n  name: caf\xe9\n")
    assert lines_of(path) == [f"{path}:2:12: not UTF-8 text (invalid continuation byte) (hint: save it as UTF-8)"]


def test_a_control_character_is_reported_where_it_is(tmp_path: Path) -> None:
    path = write(tmp_path / "r.yaml", "iso:\n  name: a\x07b\n")
    assert lines_of(path) == [f"{path}:2:10: YAML syntax error: character #x0007 is not allowed (hint: remove it)"]


def test_a_yaml_error_stops_only_its_own_file(project: Path) -> None:
    write(project / "parent.yaml", "iso: {name: [\n")
    child = write(project / "child.yaml", "extends: parent.yaml\nguests: [{name: X, image: debian}]\n")
    assert [(p.file.name, p.key) for p in problems_of(child)] == [
        ("child.yaml", "guests[0].name"),
        ("parent.yaml", ""),
    ]


# ---- YAML corner cases -------------------------------------------------------------------------------


def test_anchors_aliases_and_merge_keys(project: Path) -> None:
    path = write(
        project / "r.yaml",
        """
        iso: {name: r}
        guests:
          - &small {name: a, image: debian, memory: 64, cmdline: quiet}
          - <<: *small
            name: b
          - name: c       # keys written out win over merged ones, wherever the << stands
            <<: [*small, {vcpus: 2, name: z}]
        """,
    )
    guests = load_recipe(path).recipe.guests
    assert [(g.name, g.memory, g.vcpus, g.cmdline) for g in guests] == [
        ("a", 64, 1, "quiet"),
        ("b", 64, 1, "quiet"),
        ("c", 64, 2, "quiet"),
    ]


def test_a_problem_in_an_aliased_value_points_at_the_anchor(project: Path) -> None:
    path = write(
        project / "r.yaml",
        """
        iso: {name: r}
        guests:
          - &g {name: a, image: debian, memory: lots}
          - <<: *g
            name: b
        """,
    )
    assert [(p.line, p.key) for p in problems_of(path)] == [(3, "guests[0].memory"), (3, "guests[1].memory")]


def test_a_recursive_alias_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    path = write(tmp_path / "r.yaml", "iso: {name: r}\ndom0: &d {packages: [*d]}\n")
    problems = problems_of(path)
    assert "an alias refers to a value that contains it" in [p.message for p in problems]


def test_a_merge_of_a_non_mapping_is_a_problem(tmp_path: Path) -> None:
    path = write(tmp_path / "r.yaml", "iso:\n  <<: [a, b]\n  name: r\n")
    assert {p.message for p in problems_of(path)} == {"`<<` can only merge mappings"}


def test_keys_must_be_text(tmp_path: Path) -> None:
    path = write(tmp_path / "r.yaml", "iso: {name: r}\n? [a, b]\n: 1\n2: two\n")
    assert [(p.line, p.message) for p in problems_of(path)] == [
        (2, "a key must be text, not a list"),
        (4, "a key must be text, but YAML reads 2 as a number"),
    ]


@pytest.mark.parametrize(
    ("value", "ok"),
    [("yes", False), ("'yes'", True), ("on", False), ("null", False), ("2024-01-01", False), ("xenlive-2", True)],
)
def test_text_keys_accept_only_text_not_what_yaml_reads_as_other_types(tmp_path: Path, value: str, ok: bool) -> None:
    """`hostname: yes` is a boolean to YAML; strict validation rejects it (with a hint to quote it)."""
    path = write(tmp_path / "r.yaml", f"iso: {{name: r}}\ndom0: {{hostname: {value}}}\n")
    if ok:
        assert load_recipe(path).recipe.dom0.hostname == value.strip("'")
    else:
        (problem,) = problems_of(path)
        assert problem.key == "dom0.hostname"
        assert problem.message.startswith("must be text, but")


def test_numbers_are_not_coerced(tmp_path: Path) -> None:
    path = write(tmp_path / "r.yaml", "iso: {name: r}\nmachine: {memory: '2048', vcpus: 2.0}\ndom0: {autologin: 1}\n")
    assert [p.key for p in problems_of(path)] == ["machine.memory", "machine.vcpus", "dom0.autologin"]


def test_a_tab_in_the_indentation_gets_a_hint(tmp_path: Path) -> None:
    path = write(tmp_path / "r.yaml", "iso:\n  name: r\ndom0:\n\tmemory: 512\n")
    (problem,) = problems_of(path)
    assert (problem.line, problem.column) == (4, 1)
    assert "tabs" in problem.hint


def test_positions_are_one_based_for_keys_and_values(tmp_path: Path) -> None:
    located = load_located(write(tmp_path / "r.yaml", "iso:\n  name: r\nguests:\n  - name: a\n"))
    assert (located.keys[("iso", "name")].line, located.keys[("iso", "name")].column) == (2, 3)
    assert (located.values[("iso", "name")].line, located.values[("iso", "name")].column) == (2, 9)
    assert (located.values[("guests", 0)].line, located.values[("guests", 0)].column) == (4, 5)


def test_extends_may_not_be_an_empty_path(tmp_path: Path) -> None:
    path = write(tmp_path / "r.yaml", "extends: ''\niso: {name: r}\n")
    assert [(p.key, p.message) for p in problems_of(path)] == [("extends", "must be the path of a recipe file")]


# ---- the files a recipe names stay in its project --------------------------------------------------------


def project_with_escapes(tmp_path: Path) -> Path:
    """A project whose recipe lives in recipes/, with symlinks that lead out of it."""
    outside = tmp_path / "elsewhere"
    (outside / "etc").mkdir(parents=True)
    (outside / "guest.yaml").write_text("types: [pv]\nconfig: guest.cfg.j2\n")
    (outside / "guest.cfg.j2").write_text('name = "{{ guest.name }}"\n')
    project = tmp_path / "project"
    (project / "overlays").mkdir(parents=True)
    (project / "overlays" / "etc").symlink_to(outside / "etc")
    (project / "guest-images").mkdir()
    (project / "guest-images" / "escape.yaml").symlink_to(outside / "guest.yaml")
    (project / "guest-images" / "guest.cfg.j2").write_text('name = "{{ guest.name }}"\n')  # beside the link
    (project / "recipes").mkdir()
    (project / "xenlive.project").write_text("")
    (project / "recipes" / "demo.yaml").write_text(
        "iso: {name: demo}\ndom0: {overlays: [etc]}\nguests: [{name: web, image: escape}]\n"
    )
    return project


def test_a_symlink_in_the_project_cannot_lead_an_overlay_or_image_out_of_it(tmp_path: Path) -> None:
    project = project_with_escapes(tmp_path)
    with pytest.raises(RecipeError) as caught:
        load_recipe(project / "recipes" / "demo.yaml")
    lines = str(caught.value).splitlines()
    outside = tmp_path / "elsewhere"
    assert lines == [
        f"{project}/recipes/demo.yaml:2:19: dom0.overlays[0]: overlay {project}/overlays/etc is outside the "
        f"recipe's project {project}/ (it leads to {outside}/etc) (hint: keep what a recipe names in its project; "
        "to use a directory outside it on purpose, run with --allow-dir DIR)",
        f"{project}/recipes/demo.yaml:3:29: guests[0].image: guest image {project}/guest-images/escape.yaml is "
        f"outside the recipe's project {project}/ (it leads to {outside}/guest.yaml) (hint: keep what a recipe "
        "names in its project; to use a directory outside it on purpose, run with --allow-dir DIR)",
    ]


def test_a_directory_the_user_allows_may_be_used_but_never_proc(tmp_path: Path) -> None:
    project = project_with_escapes(tmp_path)
    loaded = load_recipe(project / "recipes" / "demo.yaml", allow=[tmp_path / "elsewhere"])
    assert loaded.overlay_dirs == [(tmp_path / "elsewhere" / "etc").resolve()]
    (project / "overlays" / "proc").symlink_to("/proc/sys")
    (project / "recipes" / "proc.yaml").write_text("iso: {name: demo}\ndom0: {overlays: [proc]}\n")
    with pytest.raises(RecipeError, match=r"overlay .*/overlays/proc is in /proc \(it leads to /proc/sys\), which"):
        load_recipe(project / "recipes" / "proc.yaml", allow=[Path("/proc"), Path("/")])
