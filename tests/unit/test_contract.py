"""dom0's runtime contract (xenlive/contract.py): its shell rendering says what the module says."""

from __future__ import annotations

from pathlib import Path

import pytest

from xenlive.contract import CONTRACT, STATUS, Contract, parse_shell, render_shell


def test_the_shell_rendering_gives_every_value_and_puts_paths_under_the_root_prefix() -> None:
    text = render_shell()
    assert parse_shell(text) == CONTRACT.variables()
    assert parse_shell(text, root="/tmp/r")["STATE"] == "/tmp/r/run/xenlive/state"
    assert parse_shell(text, root="/tmp/r")["GUEST_COLUMNS"] == "name image type autostart skip"
    assert "STATE=${XENLIVE_ROOT-}'/run/xenlive/state'" in text.splitlines()


def test_a_changed_path_is_what_the_rendering_says() -> None:
    moved = CONTRACT.with_paths(STATE="/run/elsewhere/state")
    assert parse_shell(render_shell(moved))["STATE"] == "/run/elsewhere/state"
    assert moved.disk("web") == "/dev/mapper/xenlive-web"


def test_a_value_sh_cannot_quote_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be quoted"):
        render_shell(Contract(STATE="/run/it's"))


def test_the_names_the_python_half_uses() -> None:
    assert CONTRACT.guest_columns()[0] == "name"
    assert CONTRACT.state_flags() == ("created", "done", "net", "gone", "panic")
    assert CONTRACT.iso_image("debian") == "xenlive/images/debian.squashfs"
    assert set(STATUS) >= {"dom0", "toolstack", "plan", "network", "guest", "guests", "web"}


def test_docs_list_every_subject_and_state_of_the_status_grammar() -> None:
    doc = (Path(__file__).parents[2] / "docs/console-protocol.md").read_text()
    rows = [line for line in doc.splitlines() if line.startswith("| `xenlive-status:")]
    for subject, states in STATUS.items():
        for state in states:
            assert any(f"{subject} " in row and state in row for row in rows), f"{subject} {state}"
