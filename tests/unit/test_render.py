"""Templates: strict about undefined names, and overlay trees copied with sane modes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from xenlive.errors import BuildError, InputFileError, ToolError
from xenlive.render import render_template, render_tree


def test_undefined_name_is_an_error_naming_the_template(tmp_path: Path) -> None:
    template = tmp_path / "guest.cfg.j2"
    template.write_text('name = "{{ guest.nmae }}"\n')
    with pytest.raises(BuildError, match=r"guest\.cfg\.j2:1: template uses an undefined value"):
        render_template(template, {"guest": {"name": "debian"}})


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    template = tmp_path / "grub.cfg.j2"
    template.write_text("ok\n{% if %}\n")
    with pytest.raises(BuildError, match=r"grub\.cfg\.j2:2: template syntax error"):
        render_template(template, {})


def test_render_tree_renders_j2_copies_rest_and_keeps_modes_less_write_for_others(tmp_path: Path) -> None:
    src = tmp_path / "overlay"
    (src / "etc").mkdir(parents=True)
    (src / "etc" / "hostname.j2").write_text("{{ name }}\n")
    (src / "etc" / "motd").write_text("hello\n")
    tool = src / "usr" / "bin" / "tool"
    tool.parent.mkdir(parents=True)
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o775)
    (src / "etc").chmod(0o775)
    (src / "etc" / "link").symlink_to("motd")
    dst = tmp_path / "out"
    written = render_tree(src, dst, {"name": "xenlive"})
    assert (dst / "etc" / "hostname").read_text() == "xenlive\n"
    assert not (dst / "etc" / "hostname.j2").exists()
    assert (dst / "etc" / "motd").read_text() == "hello\n"
    assert os.readlink(dst / "etc" / "link") == "motd"
    assert (dst / "usr" / "bin" / "tool").stat().st_mode & 0o777 == 0o755
    assert (dst / "etc" / "motd").stat().st_mode & 0o777 == 0o644
    assert (dst / "etc").stat().st_mode & 0o777 == 0o755
    assert "etc/hostname" in written


def test_render_tree_keeps_a_private_key_private(tmp_path: Path) -> None:
    src = tmp_path / "overlay"
    (src / "etc" / "ssh").mkdir(parents=True)
    (src / "root").mkdir(mode=0o700)
    (src / "root").chmod(0o700)
    for name, mode in (("etc/ssh/ssh_host_ed25519_key", 0o600), ("etc/ssh/secret.j2", 0o640), ("root/run", 0o700)):
        (src / name).write_text("x\n")
        (src / name).chmod(mode)
    dst = tmp_path / "out"
    render_tree(src, dst, {})
    expected = {"etc/ssh/ssh_host_ed25519_key": 0o600, "etc/ssh/secret": 0o640, "root/run": 0o700, "root": 0o700}
    assert {name: (dst / name).stat().st_mode & 0o7777 for name in expected} == expected


# ---- templates that fail: one located line, exit status 2, never a traceback --------------------------


def render_error(template: Path, context: dict[str, object] | None = None) -> str:
    with pytest.raises(InputFileError) as caught:
        render_template(template, context or {})
    assert caught.value.exit_code == 2
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_an_include_of_a_missing_file_names_the_line_of_the_include(tmp_path: Path) -> None:
    template = tmp_path / "motd.j2"
    template.write_text('hello\n{% include "missing.j2" %}\n')
    assert render_error(template) == (
        f"{template}:2: includes missing.j2, which does not exist (hint: a template includes files from {tmp_path})"
    )


def test_a_division_by_zero_names_the_template_line_also_in_an_included_file(tmp_path: Path) -> None:
    template = tmp_path / "guest.cfg.j2"
    template.write_text("a\nb\nmemory = {{ guest.memory // 0 }}\n")
    expected = f"{template}:3: template failed: integer division or modulo by zero (ZeroDivisionError)"
    assert render_error(template, {"guest": {"memory": 128}}) == expected
    outer = tmp_path / "outer.j2"
    outer.write_text('x\n{% include "guest.cfg.j2" %}\n')
    assert render_error(outer, {"guest": {"memory": 128}}) == expected


def test_a_template_that_is_not_utf8_names_the_place_also_when_included(tmp_path: Path) -> None:
    template = tmp_path / "latin1.j2"
    template.write_bytes(b"ok\ncaf\xe9\n")
    expected = f"{template}:2:4: not UTF-8 text (invalid continuation byte) (hint: save it as UTF-8)"
    assert render_error(template) == expected
    outer = tmp_path / "outer.j2"
    outer.write_text('{% include "latin1.j2" %}\n')
    assert render_error(outer) == expected


def test_an_include_of_a_named_pipe_or_a_huge_file_is_refused_unread(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    with (tmp_path / "huge").open("wb") as huge:
        huge.truncate(2**31)
    for name, reason in (("fifo", "is a named pipe (FIFO), not a regular file"), ("huge", "is 2.0 GiB, more than")):
        template = tmp_path / f"{name}.j2"
        template.write_text(f'{{% include "{name}" %}}\n')
        assert render_error(template).startswith(f"{tmp_path / name}: {reason}")


def test_a_template_that_recurses_without_end_is_one_line(tmp_path: Path) -> None:
    template = tmp_path / "loop.j2"
    template.write_text("{% macro f() %}{{ f() }}{% endmacro %}\n{{ f() }}\n")
    assert "template failed: maximum recursion depth exceeded" in render_error(template)


def test_a_named_pipe_in_an_overlay_is_refused_by_name(tmp_path: Path) -> None:
    src = tmp_path / "overlay"
    (src / "etc").mkdir(parents=True)
    os.mkfifo(src / "etc" / "pipe")
    with pytest.raises(InputFileError) as caught:
        render_tree(src, tmp_path / "out", {})
    assert str(caught.value).startswith(f"{src / 'etc' / 'pipe'}: is a named pipe (FIFO), not a regular file")


# ---- templates from someone else: no code, no host files, no values beyond what they are given --------


def test_a_template_cannot_run_code_on_the_build_host(tmp_path: Path) -> None:
    template = tmp_path / "motd.j2"
    template.write_text("{{ cycler.__init__.__globals__.os.popen('id').read() }}\n")
    message = render_error(template)
    assert message.startswith(f"{template}:1: template failed: ")
    assert "unsafe" in message and "(SecurityError)" in message


def test_a_template_sees_only_the_keys_of_a_model_and_its_declared_helpers(tmp_path: Path) -> None:
    from xenlive.recipe import Network, Recipe

    recipe = Recipe.model_validate({"iso": {"name": "t"}})
    template = tmp_path / "ok.j2"
    template.write_text(
        "{{ recipe.iso.name }} {{ recipe.network.dom0_address() }} {{ recipe.network.guest_address(1) }} "
        "{{ recipe.network.network.prefixlen }}\n"
    )
    assert render_template(template, {"recipe": recipe}) == "t 10.0.3.1 10.0.3.11 24\n"
    # Pydantic's own methods are not part of a template's context: parse_file would read a host file.
    for expression in ("recipe.parse_file('/etc/shadow')", "recipe.model_dump()", "recipe.network.model_copy()"):
        bad = tmp_path / "bad.j2"
        bad.write_text(f"{{{{ {expression} }}}}\n")
        assert "(SecurityError)" in render_error(bad, {"recipe": recipe}), expression
    assert Network.TEMPLATE_HELPERS == ("network", "dom0_address", "guest_address")


def test_a_template_cannot_change_what_it_is_given(tmp_path: Path) -> None:
    template = tmp_path / "t.j2"
    template.write_text("{{ names.append('x') }}{{ names }}\n")
    assert "(SecurityError)" in render_error(template, {"names": ["a"]})


@pytest.mark.parametrize("expression", ["'x' * 10**9", "[1] * 10**9", "10 ** (10 ** 10)"])
def test_a_template_cannot_make_values_that_fill_the_build_hosts_memory(tmp_path: Path, expression: str) -> None:
    template = tmp_path / "t.j2"
    template.write_text(f"{{{{ ({expression}) is none }}}}\n")
    assert "(SecurityError)" in render_error(template)


def test_an_include_does_not_follow_a_symlink_out_of_the_templates_tree(tmp_path: Path) -> None:
    secret = tmp_path / "host" / "shadow"
    secret.parent.mkdir()
    secret.write_text("root:$y$secret\n")
    src = tmp_path / "overlay"
    (src / "etc").mkdir(parents=True)
    (src / "etc" / "shadow").symlink_to(secret)
    (src / "etc" / "dir").symlink_to(secret.parent)
    for include in ("shadow", "dir/shadow"):
        (src / "etc" / "motd.j2").write_text(f'hello\n{{% include "{include}" %}}\n')
        with pytest.raises(InputFileError) as caught:
            render_tree(src, tmp_path / "out", {})
        assert str(caught.value) == (
            f"{src / 'etc' / include}: leads to {secret}, outside the template's tree {src} "
            "(hint: a template includes only files of its own tree)"
        )


def test_an_include_of_a_symlink_inside_the_tree_works(tmp_path: Path) -> None:
    src = tmp_path / "overlay"
    (src / "etc" / "parts").mkdir(parents=True)
    (src / "etc" / "parts" / "banner").write_text("hi {{ name }}\n")
    (src / "etc" / "banner").symlink_to("parts/banner")
    (src / "etc" / "motd.j2").write_text('{% include "banner" %}')
    render_tree(src, tmp_path / "out", {"name": "there"})
    assert (tmp_path / "out" / "etc" / "motd").read_text() == "hi there\n"


def test_the_sandbox_refuses_the_format_escape_of_jinja2_3_1_5(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CVE-2025-27516: `|attr('format')` reached str.format unchecked before jinja2 3.1.6."""
    monkeypatch.setenv("XENLIVE_TEST_SECRET", "s3cr3t-value")
    template = tmp_path / "motd.j2"
    template.write_text("{{ ('{0.__init__.__globals__[os].environ[XENLIVE_TEST_SECRET]}'|attr('format'))(cycler) }}\n")
    message = render_error(template)
    assert message.startswith(f"{template}:1: template failed: ")
    assert "s3cr3t-value" not in message


def test_xenlive_requires_and_checks_the_first_jinja2_whose_sandbox_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    import tomllib

    import jinja2

    from xenlive.render import JINJA2_SAFE

    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert "jinja2>=3.1.6" in project["project"]["dependencies"]
    assert JINJA2_SAFE == (3, 1, 6)
    monkeypatch.setattr(jinja2, "__version__", "3.1.5")
    with pytest.raises(ToolError, match=r"jinja2 3\.1\.5 .*install jinja2>=3\.1\.6"):
        render_template(Path(__file__), {})
