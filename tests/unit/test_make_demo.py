"""`make demo` installs only what a build and `boot` need; `make test` the rest (the Makefile, read as text)."""

from __future__ import annotations

import re
from pathlib import Path

from xenlive.pipeline import host_packages
from xenlive.qemu import QEMU
from xenlive.recipe import load_recipe
from xenlive.run import TOOL_PACKAGES

ROOT = Path(__file__).resolve().parents[2]
MAKEFILE = (ROOT / "Makefile").read_text().replace("\\\n", " ")
ESSENTIAL = {"coreutils", "dpkg", "tar"}
TEST_ONLY = {"chromium", "chromium-driver", "shellcheck", "debootstrap"}


def variable(name: str) -> list[str]:
    [value] = re.findall(rf"^{name} := (.*)$", MAKEFILE, flags=re.MULTILINE)
    return value.split()


def recipe_of(target: str) -> tuple[list[str], list[str]]:
    """A target's prerequisites and the lines of its recipe."""
    match = re.search(rf"^{re.escape(target)}:([^#\n]*)(?:##[^\n]*)?\n((?:\t[^\n]*\n)*)", MAKEFILE, flags=re.MULTILINE)
    assert match is not None, target
    return match[1].split(), [line.strip() for line in match[2].splitlines()]


def test_make_demo_installs_what_the_demo_build_and_boot_need_and_no_test_tool() -> None:
    demo = set(variable("APT_PACKAGES"))
    needed = host_packages(load_recipe(ROOT / "recipes" / "xen-demo.yaml")) | {TOOL_PACKAGES[QEMU], "python3-venv"}
    assert needed - ESSENTIAL <= demo
    assert not demo & TEST_ONLY
    assert recipe_of("demo")[0] == ["deps", "venv"]
    _, venv = recipe_of("$(VENV)/.installed")
    assert "$(PY) -m pip install -q -e ." in venv and not any("[test" in line or "dib" in line for line in venv)


def test_make_test_installs_the_rest() -> None:
    tests = set(variable("TEST_APT_PACKAGES"))
    assert "$(APT_PACKAGES)" in tests and tests >= TEST_ONLY
    assert recipe_of("test")[0][:2] == ["test-deps", "test-venv"]
    assert recipe_of("lint")[0] == ["test-venv"]
    assert "$(PY) -m pip install -q -e '.[test,dib]'" in recipe_of("$(VENV)/.installed-test")[1]
