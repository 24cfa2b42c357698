"""`validate` and `show` through the real command line, on the fixture recipes (diskimage-builder style).

tests/fixtures/bad/CASE.yaml must make `validate` exit with status 2 and print exactly the lines of
tests/fixtures/bad/CASE.expected on stderr: one line per problem, nothing else (no traceback). The tests run
in tests/fixtures, so the paths in the .expected files are relative to it, as a user there would see them.
tests/fixtures/good/CASE.yaml must validate, and `show --json` must print tests/fixtures/good/CASE.json.

To add a case: write bad/CASE.yaml, check that `validate` prints what a user needs, and save its stderr:
    cd tests/fixtures && python -m xenlive.cli validate bad/CASE.yaml 2> bad/CASE.expected
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from xenlive.cli import main

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
BAD_CASES = sorted(p.stem for p in (FIXTURES / "bad").glob("*.expected"))
GOOD_CASES = sorted(p.stem for p in (FIXTURES / "good").glob("*.yaml"))
SHIPPED = sorted((ROOT / "recipes").glob("*.yaml"))


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def in_fixtures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)


@pytest.mark.usefixtures("in_fixtures")
@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_recipe_fails_with_exactly_the_expected_problems(case: str) -> None:
    expected = (FIXTURES / "bad" / f"{case}.expected").read_text(encoding="utf-8").splitlines()
    result = run("validate", f"bad/{case}.yaml")
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == expected
    assert result.stdout == ""


def test_every_bad_recipe_has_its_expected_output() -> None:
    recipes = {p.stem for p in (FIXTURES / "bad").glob("*.yaml")}
    assert recipes == set(BAD_CASES), "each bad/CASE.yaml needs a bad/CASE.expected and the other way round"
    assert len(BAD_CASES) >= 16


@pytest.mark.usefixtures("in_fixtures")
def test_bad_recipes_cover_the_required_cases() -> None:
    """The issue lists kinds of problems that must each have a fixture; find each kind in the outputs."""
    outputs = "\n".join((FIXTURES / "bad" / f"{case}.expected").read_text(encoding="utf-8") for case in BAD_CASES)
    for needle in [
        "YAML syntax error",
        "file is empty",
        "gusets: unknown key (hint: did you mean 'guests'?)",
        "guests[1].memroy: unknown key",
        'guests[1].memory: must be an integer (MiB), got "lots"',
        'guests[0].type: must be one of pv, pvh, hvm, got "kvm"',
        "guests[0].name: must be 1 to 31 of a-z",
        "overlay 'extar' not found",
        "guest image 'debain' not found",
        "extends: cycle:",
        "extends: parent recipe bad/nope.yaml not found",
        "duplicate guest name 'web'",
        "autostart guests need 1088 MiB",
        "unsupported suite 'forky'",
        'hypervisor.xen_version: Debian trixie ships Xen 4.20 (hint: set hypervisor.xen_version: "4.20"',
        "guest image 'bookworm' is of suite bookworm, but dom0.mirrors name no suite trixie",
        "suite: unsupported suite 'buster'",
        "cannot boot as hvm",
        "bad/guest-images/broken.yaml:4:1: kernel: unknown key",
        "bad/parents/bad-parent.yaml:4:3: iso.volume_lable: unknown key",
        "aliases expand this file to more than 10000 keys and values",
        "nested more than 32 levels deep",
        "a number of 5000 digits is too large",
    ]:
        assert needle in outputs


@pytest.mark.usefixtures("in_fixtures")
@pytest.mark.parametrize("case", GOOD_CASES)
def test_good_recipe_validates(case: str) -> None:
    result = run("validate", f"good/{case}.yaml")
    assert result.exit_code == 0, result.output
    guests = len(json.loads((FIXTURES / "good" / f"{case}.json").read_text(encoding="utf-8"))["guests"])
    assert result.stdout == f"good/{case}.yaml: ok ({guests} guest(s))\n"


@pytest.mark.usefixtures("in_fixtures")
@pytest.mark.parametrize("case", GOOD_CASES)
def test_show_json_prints_the_resolved_recipe(case: str) -> None:
    result = run("show", "--json", f"good/{case}.yaml")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json.loads((FIXTURES / "good" / f"{case}.json").read_text(encoding="utf-8"))


@pytest.mark.usefixtures("in_fixtures")
def test_show_merges_extends_child_keys_override_and_lists_replace() -> None:
    data = json.loads(run("show", "--json", "good/child.yaml").stdout)
    assert data["iso"]["name"] == "child"  # given by both: the child's
    assert data["iso"]["volume_label"] == "BASE"  # only in the parent: kept
    assert data["iso"]["boot_menu"] == {"title": "Base menu", "timeout": 0, "default": "demo"}  # merged, default
    assert data["dom0"]["packages"] == ["tmux"]  # a list from the child replaces the parent's
    assert [g["name"] for g in data["guests"]] == ["web", "spare"]


@pytest.mark.usefixtures("in_fixtures")
def test_show_yaml_gives_the_same_data_as_json() -> None:
    as_yaml = yaml.safe_load(run("show", "good/child.yaml").stdout)
    assert as_yaml == json.loads(run("show", "--json", "good/child.yaml").stdout)


@pytest.mark.usefixtures("in_fixtures")
def test_show_of_a_bad_recipe_reports_problems_like_validate() -> None:
    result = run("show", "--json", "bad/wrong-type.yaml")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == (FIXTURES / "bad" / "wrong-type.expected").read_text().splitlines()


@pytest.mark.parametrize("recipe", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_recipes_validate(recipe: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = run("validate", str(recipe.relative_to(ROOT)))
    assert result.exit_code == 0, result.output


def test_missing_recipe_file_is_one_line_and_status_2(tmp_path: Path) -> None:
    result = run("validate", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2
    assert result.stderr == f"{tmp_path / 'nope.yaml'}:1:1: file not found\n"


@pytest.mark.usefixtures("in_fixtures")
def test_allow_dir_lets_a_recipe_use_a_directory_outside_its_project_but_never_proc_or_run() -> None:
    result = run("validate", "--allow-dir", "/etc", "bad/outside-project.yaml")
    assert result.exit_code == 2
    assert "outside the recipe's project" not in result.stderr
    assert [line.split(": ")[1] for line in result.stderr.splitlines()] == [
        "expected a mapping of keys at the top level, got a single value (hint",  # /etc/passwd, read as a recipe
        "dom0.overlays[2]",
        "dom0.overlays[3]",
    ]
