"""Input files that are not what they seem, in-process: no exception reaches the user as a traceback, and a
template that fails stops its stage with one located line. The cases that run `validate` in a child process
held to 10 s and 1 GiB of memory are in tests/tools/test_hostile_inputs.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import STAND_IN_VERSIONS
from xenlive.cache import Cache
from xenlive.cli import main
from xenlive.context import BuildContext
from xenlive.errors import InputFileError
from xenlive.recipe import load_recipe
from xenlive.stages import StageRunner
from xenlive.stages.config import build_dom0_config


def make_project(root: Path) -> Path:
    """A project with a valid guest image `debian`, beside the odd files the tests add."""
    images = root / "guest-images"
    images.mkdir()
    (images / "debian.yaml").write_text("types: [pv]\nconfig: debian.cfg.j2\n")
    (images / "debian.cfg.j2").write_text('name = "{{ guest.name }}"\n')
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path)


def recipe_with(project: Path, line: str) -> Path:
    recipe = project / "r.yaml"
    recipe.write_text(f"iso: {{name: r}}\n{line}\n")
    return recipe


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
