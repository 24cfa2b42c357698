"""Debian suites: which Xen each ships, dom0's and each guest image's suite, and the archive an image of
another suite than dom0's installs from."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from xenlive.errors import BuildError, RecipeError
from xenlive.recipe import load_recipe
from xenlive.stages.config import template_context
from xenlive.stages.dom0 import find_xen_lib
from xenlive.stages.guest import archive_of, image_suite, unique_images
from xenlive.suites import DEFAULT_SUITE, SUITES, XEN_BY_SUITE, swap_suite

ROOT = Path(__file__).resolve().parents[2]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def project(tmp_path: Path, recipe: str, images: dict[str, str] | None = None) -> Path:
    """A recipe in a project of its own, with guest images NAME.yaml (their text) and an empty template."""
    write(tmp_path / "xenlive.project", "")  # recipes/ beside guest-images/
    write(tmp_path / "guest-images" / "x.cfg.j2", "")
    for name, text in (images or {}).items():
        write(tmp_path / "guest-images" / f"{name}.yaml", "config: x.cfg.j2\ntypes: [pv]\n" + text)
    return write(tmp_path / "recipes" / "r.yaml", recipe)


def test_each_suite_names_its_xen_and_the_default_is_debians_stable_trixie() -> None:
    assert XEN_BY_SUITE == {"bookworm": "4.17", "trixie": "4.20"}
    assert DEFAULT_SUITE == "trixie" and set(SUITES) == set(XEN_BY_SUITE)


@pytest.mark.parametrize(("dom0", "xen"), [("", "4.20"), ("suite: trixie", "4.20"), ("suite: bookworm", "4.17")])
@pytest.mark.parametrize("named", [False, True])
def test_the_xen_version_follows_from_the_suite_whether_or_not_the_recipe_names_it(
    tmp_path: Path, dom0: str, xen: str, named: bool
) -> None:
    hypervisor = f'hypervisor: {{xen_version: "{xen}"}}\n' if named else ""
    loaded = load_recipe(project(tmp_path, f"iso: {{name: t}}\ndom0: {{{dom0}}}\n{hypervisor}"))
    assert loaded.recipe.xen_version() == xen
    assert template_context(loaded)["xen_lib"] == f"/usr/lib/xen-{xen}"


def test_a_suites_xen_of_another_suite_is_refused_naming_the_one_it_ships(tmp_path: Path) -> None:
    recipe = project(tmp_path, 'iso: {name: t}\nhypervisor:\n  xen_version: "4.17"\ndom0: {suite: trixie}\n')
    with pytest.raises(RecipeError) as caught:
        load_recipe(recipe)
    [problem] = caught.value.problems
    assert (problem.line, problem.column) == (3, 16)
    assert "Debian trixie ships Xen 4.20" in str(problem)


def test_swapping_a_suite_changes_its_own_words_and_nothing_else() -> None:
    assert [swap_suite(w, "trixie", "bookworm") for w in ("trixie", "trixie-updates", "trixie-security")] == [
        "bookworm",
        "bookworm-updates",
        "bookworm-security",
    ]
    assert swap_suite("trixie-backports", "trixie", "bookworm") == "bookworm-backports"
    assert swap_suite("sid", "trixie", "bookworm") == "sid"
    assert swap_suite("trixiex", "trixie", "bookworm") == "trixiex"


def test_a_guest_image_takes_dom0s_suite_unless_it_names_its_own_and_installs_from_dom0s_mirrors(
    tmp_path: Path,
) -> None:
    recipe = project(
        tmp_path,
        """
        iso: {name: t}
        dom0:
          suite: trixie
          mirrors:
            - {url: "http://snapshot.debian.org/archive/debian/20261201T000000Z", suites: [trixie, trixie-updates]}
            - url: "http://security.debian.org/debian-security"
              suites: [trixie-security]
              components: [main, contrib]
        guests:
          - {name: new, image: same}
          - {name: old, image: older}
        """,
        {"same": "", "older": "suite: bookworm\n"},
    )
    loaded = load_recipe(recipe)
    same, older = unique_images(loaded)
    assert (image_suite(loaded, same), image_suite(loaded, older)) == ("trixie", "bookworm")
    assert archive_of(loaded, same).sources == tuple(loaded.recipe.dom0.apt_sources())
    old = archive_of(loaded, older)
    assert old.suite == "bookworm"
    assert old.sources == (
        "deb http://snapshot.debian.org/archive/debian/20261201T000000Z bookworm main",
        "deb http://snapshot.debian.org/archive/debian/20261201T000000Z bookworm-updates main",
        "deb http://security.debian.org/debian-security bookworm-security main contrib",
    )


def test_a_trixie_guest_under_a_bookworm_dom0_installs_from_the_default_mirrors_of_trixie(tmp_path: Path) -> None:
    recipe = project(
        tmp_path,
        "iso: {name: t}\ndom0: {suite: bookworm}\nguests:\n  - {name: new, image: newer}\n",
        {"newer": "suite: trixie\n"},
    )
    loaded = load_recipe(recipe)
    assert archive_of(loaded, unique_images(loaded)[0]).sources == (
        "deb http://deb.debian.org/debian trixie main",
        "deb http://deb.debian.org/debian trixie-updates main",
        "deb http://deb.debian.org/debian-security trixie-security main",
    )


def test_the_shipped_bookworm_recipe_boots_bookworm_with_its_xen() -> None:
    loaded = load_recipe(ROOT / "recipes" / "xen-demo-bookworm.yaml")
    assert (loaded.recipe.dom0.suite, loaded.recipe.xen_version()) == ("bookworm", "4.17")
    assert {image_suite(loaded, image) for image in unique_images(loaded) if image.builder.from_archive} == {"bookworm"}


def test_the_xen_dom0_installed_is_found_where_its_programs_are(tmp_path: Path) -> None:
    (tmp_path / "usr/lib/xen-4.20/bin").mkdir(parents=True)
    (tmp_path / "usr/lib/xen-4.20/bin/xl").write_text("")
    (tmp_path / "usr/lib/xen-4.20/boot").mkdir()
    assert find_xen_lib(tmp_path, "4.20") == "/usr/lib/xen-4.20"
    with pytest.raises(BuildError, match=r"not in /usr/lib/xen-4\.17 \(found: xen-4\.20\)"):
        find_xen_lib(tmp_path, "4.17")
