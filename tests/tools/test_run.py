"""run(): the environment a tool sees."""

from __future__ import annotations

import json
import sys

import pytest

from xenlive.run import run

pytestmark = pytest.mark.tools

PRINT_ENV = "import json, os; print(json.dumps(dict(os.environ)))"


def test_clean_env_gives_the_tool_only_the_listed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XENLIVE_LEAK", "1")
    proc = run([sys.executable, "-c", PRINT_ENV], env={"XENLIVE_ONLY": "yes"}, clean_env=True, capture=True)
    seen = json.loads(proc.stdout)
    seen.pop("LC_CTYPE", None)  # Python sets it itself in a C locale (PEP 538)
    assert seen == {"XENLIVE_ONLY": "yes"}


def test_env_without_clean_env_adds_to_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XENLIVE_KEPT", "1")
    proc = run([sys.executable, "-c", PRINT_ENV], env={"XENLIVE_ADDED": "2"}, capture=True)
    seen = json.loads(proc.stdout)
    assert seen["XENLIVE_KEPT"] == "1" and seen["XENLIVE_ADDED"] == "2"


def test_our_source_date_epoch_never_reaches_a_tool_but_the_one_passed_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """The build's epoch comes from the build context, in the one call that needs it; an inherited one (which
    mksquashfs would refuse beside its -all-time) is not passed on."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1600000000")
    inherited = json.loads(run([sys.executable, "-c", PRINT_ENV], capture=True).stdout)
    assert "SOURCE_DATE_EPOCH" not in inherited
    passed = run([sys.executable, "-c", PRINT_ENV], env={"SOURCE_DATE_EPOCH": "1700000000"}, capture=True)
    assert json.loads(passed.stdout)["SOURCE_DATE_EPOCH"] == "1700000000"
