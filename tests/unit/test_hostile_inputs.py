"""Input files that are not what they seem, in-process: no exception reaches the user as a traceback, and a
template that fails stops its stage with one located line. The cases that run `validate` in a child process
held to 10 s and 1 GiB of memory are in tests/tools/test_hostile_inputs.py.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import STAND_IN_VERSIONS
from xenlive.cache import Cache
from xenlive.cli import main
from xenlive.context import BuildContext
from xenlive.errors import InputFileError, XenliveError
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


def shows_safely(text: str) -> bool:
    """Whether text prints on a terminal as what it says: no control character (C0, DEL, C1), no
    bidirectional or other format control, no line separator."""
    return all(line.isprintable() for line in text.splitlines()) and "\r" not in text


# color=True: click passes escapes on as it does to a terminal (to a pipe it strips some of them).


def test_key_names_with_terminal_escapes_and_newlines_stay_one_escaped_line_each(project: Path) -> None:
    spoof = "\x1b[2K\rspoof.yaml: ok (3 guest(s))\x1b[8m"
    recipe = project / "r.yaml"
    recipe.write_text('iso: {name: r}\n"\\e[2K\\rspoof.yaml: ok (3 guest(s))\\e[8m": 1\n"two\\nlines\\u202e\\x9b": 2\n')
    result = CliRunner().invoke(main, ["validate", str(recipe)], color=True)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and shows_safely(result.stderr)
    assert all(line.startswith(f"{recipe}:") for line in lines)
    assert lines[0].startswith(f"{recipe}:2:1: " + spoof.encode("unicode_escape").decode() + ": unknown key")
    assert lines[1].startswith(f"{recipe}:3:1: two\\nlines\\u202e\\x9b: unknown key")


def test_an_extends_path_with_terminal_escapes_is_shown_escaped(project: Path) -> None:
    recipe = recipe_with(project, 'extends: "\\e]0;owned\\a\\nnext.yaml"')
    result = CliRunner().invoke(main, ["validate", str(recipe)], color=True)
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1 and shows_safely(result.stderr)
    assert "\\x1b]0;owned\\x07\\nnext.yaml not found" in result.stderr


def test_other_errors_and_bugs_are_shown_escaped_on_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(path: Path, allow: object = ()) -> None:
        raise XenliveError("cannot use \x1b[31mred\x1b[0m\nnext")

    monkeypatch.setattr("xenlive.recipe.load_recipe", failing)
    result = CliRunner().invoke(main, ["validate", "any.yaml"], color=True)
    assert (result.exit_code, result.stderr) == (1, "error: cannot use \\x1b[31mred\\x1b[0m\\nnext\n")

    def broken(path: Path, allow: object = ()) -> None:
        raise RuntimeError("bad \x1b]2;title\x07 \u202e")

    monkeypatch.setattr("xenlive.recipe.load_recipe", broken)
    result = CliRunner().invoke(main, ["validate", "any.yaml"], color=True)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: unexpected RuntimeError: bad \\x1b]2;title\\x07 \\u202e (a bug")


LONG = "a" * 300  # over NAME_MAX (255 bytes), the longest name of a file


@pytest.mark.parametrize(
    "line",
    [
        'extends: "a\\0b.yaml"',
        "extends: loop.yaml",
        f"extends: {LONG}.yaml",
        f"extends: {LONG}/base.yaml",
        f"dom0: {{overlays: [{LONG}]}}",
        f"dom0: {{overlays: [{LONG}/etc]}}",
        f"guests: [{{name: g, image: {'a' * 254}}}]",
        "guests: [{name: g, image: odd}]",
    ],
    ids=[
        "extends-nul",
        "extends-loop",
        "extends-long",
        "extends-long-dir",
        "overlay-long",
        "overlay-long-dir",
        "image-long-with-suffix",
        "image-overlay-long",
    ],
)
def test_names_the_file_system_refuses_are_one_located_line_and_status_2(project: Path, line: str) -> None:
    (project / "loop.yaml").symlink_to("loop2.yaml")
    (project / "loop2.yaml").symlink_to("loop.yaml")
    (project / "guest-images" / "odd.yaml").write_text(f"types: [pv]\nconfig: debian.cfg.j2\noverlay: {LONG}\n")
    recipe = recipe_with(project, line)
    result = CliRunner().invoke(main, ["validate", str(recipe)])
    assert "a bug in xenlive" not in result.stderr
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(
        f"{recipe}:2:" if "odd" not in line else f"{project / 'guest-images' / 'odd.yaml'}:3:"
    )


def test_init_onto_a_dangling_symlink_is_one_line_and_status_2(tmp_path: Path) -> None:
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    result = CliRunner().invoke(main, ["init", str(tmp_path / "dangling")])
    assert "a bug in xenlive" not in result.stderr
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1 and str(tmp_path / "dangling") in result.stderr
    assert not (tmp_path / "nowhere").exists()


def test_what_validate_and_the_build_log_say_of_a_file_is_escaped_too(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = project / "\x1b]0;title\x07r\x1b[2K.yaml"
    recipe.write_text("iso: {name: r}\n")
    result = CliRunner().invoke(main, ["validate", str(recipe)], color=True)
    assert result.exit_code == 0
    assert result.stdout == f"{project}/\\x1b]0;title\\x07r\\x1b[2K.yaml: ok (0 guest(s))\n"

    # The build log (xenlive.progress's steps and notes name overlay files, guests, URLs).
    def logs(path: Path, allow: object = ()) -> None:
        logging.getLogger("xenlive").info("    building because overlay 0: %s changed", "etc/\x1b[8mmotd\nok")
        raise XenliveError("stopped")

    monkeypatch.setattr("xenlive.recipe.load_recipe", logs)
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    result = CliRunner().invoke(main, ["validate", "any.yaml"], color=True)
    assert result.stderr == "    building because overlay 0: etc/\\x1b[8mmotd\\nok changed\nerror: stopped\n"


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
