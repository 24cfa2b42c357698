"""The runit scripts the dom0-config stage generates from xenlive/services.py pass shellcheck as sh, as the
hand-written ones do in `make lint`, for the recipe switches that change them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from xenlive.recipe import load_recipe
from xenlive.services import install_services

pytestmark = pytest.mark.tools

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed (make deps)")
@pytest.mark.parametrize("switches", [{}, {"web_console": False, "autologin": False}])
def test_the_generated_runit_scripts_pass_shellcheck(tmp_path: Path, switches: dict[str, bool]) -> None:
    recipe = load_recipe(ROOT / "recipes" / "xen-demo.yaml").recipe
    recipe = recipe.model_copy(update={"dom0": recipe.dom0.model_copy(update={"init": "runit", **switches})})
    tree = tmp_path / "tree"
    install_services(tree, recipe)
    scripts = sorted(
        [*tree.glob("etc/sv/*/run"), *tree.glob("etc/sv/*/log/run"), *tree.glob("etc/runit/boot-run/*.sh")]
    )
    assert len(scripts) > len(recipe.guests)
    done = subprocess.run(
        ["shellcheck", "-s", "sh", *map(str, scripts)], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stdout
