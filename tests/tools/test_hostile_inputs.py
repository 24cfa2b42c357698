"""Input files that are not what they seem, each given to `xenlive validate` in a child process held to
10 s and 1 GiB of memory: one located line and exit status 2, within those limits, and never a traceback.
YAML cases are fixtures (tests/fixtures/bad/CASE.yaml with CASE.expected); /dev/zero, named pipes and huge
files are made in the test's directory."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.test_cli_validate import FIXTURES, ROOT
from tests.unit.test_hostile_inputs import make_project, recipe_with

pytestmark = pytest.mark.tools


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path)


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


def make_huge(path: Path) -> Path:
    with path.open("wb") as f:
        f.truncate(HUGE)
    return path


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


def test_a_chain_of_extends_longer_than_16_recipes_is_one_line(tmp_path: Path) -> None:
    for i in range(40):
        (tmp_path / f"r{i}.yaml").write_text(f"extends: r{i + 1}.yaml\n")
    (tmp_path / "r40.yaml").write_text("iso: {name: r}\n")
    line = one_line(validate("r0.yaml", tmp_path))
    assert line == (
        "r15.yaml:1:10: extends: r16.yaml would make a chain of more than 16 recipes "
        "(hint: a recipe extends one or two others)"
    )
