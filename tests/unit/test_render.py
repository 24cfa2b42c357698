"""Templates: strict about undefined names, and overlay trees copied with sane modes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from xenlive.errors import BuildError
from xenlive.render import render_template, render_tree


def test_undefined_name_is_an_error_naming_the_template(tmp_path: Path) -> None:
    template = tmp_path / "guest.cfg.j2"
    template.write_text('name = "{{ guest.nmae }}"\n')
    with pytest.raises(BuildError, match=r"guest\.cfg\.j2: template uses an undefined value"):
        render_template(template, {"guest": {"name": "debian"}})


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    template = tmp_path / "grub.cfg.j2"
    template.write_text("ok\n{% if %}\n")
    with pytest.raises(BuildError, match=r"grub\.cfg\.j2:2: template syntax error"):
        render_template(template, {})


def test_render_tree_renders_j2_copies_rest_and_normalises_modes(tmp_path: Path) -> None:
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
