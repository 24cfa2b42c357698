"""Input files that are not what they seem: `validate` gives one located line and exit status 2, within
10 s and 1 GiB of memory, and never a traceback; and no exception reaches the user as a traceback.

Each case runs `xenlive validate` in a child process held to those limits, so that a case that would
hang or grow without bound fails here instead of taking the test run with it. YAML cases are fixtures
(tests/fixtures/bad/CASE.yaml with CASE.expected); /dev/zero, named pipes and huge files are made in
the test's directory.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import STAND_IN_VERSIONS
from tests.unit.test_cli_validate import FIXTURES, ROOT
from xenlive.cache import Cache
from xenlive.cli import main
from xenlive.context import BuildContext
from xenlive.errors import InputFileError
from xenlive.recipe import load_recipe
from xenlive.stages import StageRunner
from xenlive.stages.config import build_dom0_config

SECONDS = 10
MEMORY = 2**30
HUGE = 2 * 2**30  # a sparse file: big on paper, no space on disk


def validate(recipe: Path | str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`xenlive validate RECIPE` run in cwd, in a child process held to 10 s and 1 GiB of address space."""

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))

    return subprocess.run(
        [sys.executable, "-m", "xenlive.cli", "validate", str(recipe)],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=SECONDS,
        preexec_fn=limit_memory,
        check=False,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single line of a refused recipe (and a check that nothing else was printed)."""
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    return lines[0]


@pytest.mark.parametrize("case", ["yaml-bomb", "deep-nesting", "huge-number"])
def test_yaml_that_expands_nests_or_counts_without_bound_is_one_line(case: str) -> None:
    expected = (FIXTURES / "bad" / f"{case}.expected").read_text(encoding="utf-8").splitlines()
    assert [one_line(validate(f"bad/{case}.yaml", FIXTURES))] == expected


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with a valid guest image `debian`, beside the odd files the tests add."""
    images = tmp_path / "guest-images"
    images.mkdir()
    (images / "debian.yaml").write_text("types: [pv]\nconfig: debian.cfg.j2\n")
    (images / "debian.cfg.j2").write_text('name = "{{ guest.name }}"\n')
    return tmp_path


def make_huge(path: Path) -> Path:
    with path.open("wb") as f:
        f.truncate(HUGE)
    return path


def recipe_with(project: Path, line: str) -> Path:
    recipe = project / "r.yaml"
    recipe.write_text(f"iso: {{name: r}}\n{line}\n")
    return recipe


@pytest.mark.parametrize(
    ("target", "phrase"),
    [
        ("/dev/zero", "/dev/zero is a character device, not a regular file"),
        ("fifo.yaml", "fifo.yaml is a named pipe (FIFO), not a regular file"),
        ("huge.yaml", "huge.yaml is 2.0 GiB, more than the 256 KiB an input file may have"),
    ],
)
def test_extends_naming_a_device_a_fifo_or_a_huge_file_is_one_line(project: Path, target: str, phrase: str) -> None:
    os.mkfifo(project / "fifo.yaml")
    make_huge(project / "huge.yaml")
    recipe = recipe_with(project, f"extends: {target}")
    line = one_line(validate(recipe, project))
    assert line.startswith(f"{recipe}:2:10: extends: "), line
    assert phrase in line


@pytest.mark.parametrize(
    ("image", "phrase"),
    [
        ("/dev/zero", "/dev/zero is a character device, not a regular file"),
        ("fifo", "fifo.yaml is a named pipe (FIFO), not a regular file"),
        ("dir", "dir.yaml is a directory, not a regular file"),
        ("huge", "huge.yaml is 2.0 GiB, more than the 256 KiB an input file may have"),
    ],
)
def test_image_naming_a_device_a_fifo_a_directory_or_a_huge_file_is_one_line(
    project: Path, image: str, phrase: str
) -> None:
    images = project / "guest-images"
    os.mkfifo(images / "fifo.yaml")
    (images / "dir.yaml").mkdir()
    make_huge(images / "huge.yaml")
    recipe = recipe_with(project, f"guests: [{{name: g, image: {image}}}]")
    line = one_line(validate(recipe, project))
    assert line.startswith(f"{recipe}:2:27: guests[0].image: guest image "), line
    assert phrase in line


@pytest.mark.parametrize(
    ("name", "phrase"),
    [
        ("/dev/zero", "/dev/zero:1:1: is a character device, not a regular file"),
        ("fifo.yaml", "fifo.yaml:1:1: is a named pipe (FIFO), not a regular file"),
        ("huge.yaml", "huge.yaml:1:1: is 2.0 GiB, more than the 256 KiB an input file may have"),
    ],
)
def test_a_recipe_that_is_a_device_a_fifo_or_a_huge_file_is_one_line(tmp_path: Path, name: str, phrase: str) -> None:
    os.mkfifo(tmp_path / "fifo.yaml")
    make_huge(tmp_path / "huge.yaml")
    assert phrase in one_line(validate(name, tmp_path))


def test_a_guest_config_template_that_is_a_device_is_one_line(project: Path) -> None:
    image = project / "guest-images" / "odd.yaml"
    image.write_text("types: [pv]\nconfig: /dev/zero\n")
    recipe = recipe_with(project, "guests: [{name: g, image: odd}]")
    line = one_line(validate(recipe, project))
    assert line.startswith(f"{image}:2:9: config: template /dev/zero is a character device"), line


# ---- whatever goes wrong, the command line prints one line ---------------------------------------------


def test_an_unexpected_exception_is_one_line_that_points_to_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(path: Path, allow: object = ()) -> None:
        raise RuntimeError("something\nbroke")

    monkeypatch.setattr("xenlive.recipe.load_recipe", broken)
    result = CliRunner().invoke(main, ["validate", "any.yaml"])
    assert result.exit_code == 1
    assert result.stderr == (
        "error: unexpected RuntimeError: something broke (a bug in xenlive; --debug shows the traceback)\n"
    )
    debug = CliRunner().invoke(main, ["--debug", "validate", "any.yaml"])
    assert debug.exit_code == 1
    assert "Traceback" in debug.stderr and 'raise RuntimeError("something\\nbroke")' in debug.stderr


def test_usage_errors_raised_inside_a_command_are_still_usage_errors(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["cache", "prune", "--cache-dir", str(tmp_path), "--older-than", "soon"])
    assert result.exit_code == 2
    assert "Invalid value: 'soon': give a number with s, m, h, d or w" in result.stderr


def test_a_chain_of_extends_longer_than_16_recipes_is_one_line(tmp_path: Path) -> None:
    for i in range(40):
        (tmp_path / f"r{i}.yaml").write_text(f"extends: r{i + 1}.yaml\n")
    (tmp_path / "r40.yaml").write_text("iso: {name: r}\n")
    line = one_line(validate("r0.yaml", tmp_path))
    assert line == (
        "r15.yaml:1:10: extends: r16.yaml would make a chain of more than 16 recipes "
        "(hint: a recipe extends one or two others)"
    )


def test_a_failing_template_stops_the_build_stage_with_one_located_line(project: Path, tmp_path: Path) -> None:
    etc = project / "overlays" / "bad" / "etc"
    etc.mkdir(parents=True)
    (etc / "motd.j2").write_text("Welcome to {{ recipe.iso.name }}\n{{ recipe.machine.memory // 0 }}\n")
    loaded = load_recipe(recipe_with(project, "dom0: {overlays: [bad]}"))
    with pytest.raises(InputFileError) as caught:
        build_dom0_config(StageRunner(Cache(tmp_path / "cache"), BuildContext(versions=STAND_IN_VERSIONS)), loaded)
    assert caught.value.exit_code == 2
    template = etc.resolve() / "motd.j2"
    assert str(caught.value) == f"{template}:2: template failed: integer division or modulo by zero (ZeroDivisionError)"
