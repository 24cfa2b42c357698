"""xenlive as users install it (`pipx install .`, or a wheel): the wheel installed into a fresh virtualenv
works from any directory, with the recipes, guest images, overlays and templates it carries.

Needs pip and the network (hatchling to build the wheel, xenlive's dependencies to install it), like any
user's install.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from xenlive import __version__

pytestmark = pytest.mark.tools

ROOT = Path(__file__).resolve().parents[2]


def sh(*argv: str | Path, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=600
    )
    assert proc.returncode == 0, f"{argv}: {proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin directory of a fresh virtualenv with the wheel built from this checkout installed."""
    base = tmp_path_factory.mktemp("wheel")
    sh(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", base / "dist", ROOT, cwd=base)
    (wheel,) = (base / "dist").glob("xenlive-*.whl")
    sh(sys.executable, "-m", "venv", base / "venv", cwd=base)
    sh(base / "venv" / "bin" / "pip", "install", "-q", wheel, cwd=base)
    return base / "venv" / "bin"


def test_the_installed_xenlive_is_the_wheels_not_this_checkout(installed: Path, tmp_path: Path) -> None:
    where = sh(installed / "python", "-c", "import xenlive.paths as p; print(p.data_dir('guest-images'))", cwd=tmp_path)
    assert Path(where.strip()).is_relative_to(installed.parent), where
    assert sh(installed / "xenlive", "--version", cwd=tmp_path).strip() == f"xenlive, version {__version__}"


def test_init_validate_and_show_work_from_any_directory(installed: Path, tmp_path: Path) -> None:
    out = sh(installed / "xenlive", "init", "my-iso", cwd=tmp_path)
    assert "my-iso/my-iso.yaml" in out
    project = tmp_path / "my-iso"
    assert (project / "README.md").is_file()
    assert (project / "overlays" / "site" / "etc" / "motd.j2").is_file()
    # `extends: base.yaml` and `image: debian` come from the data installed with the package.
    assert sh(installed / "xenlive", "validate", "my-iso/my-iso.yaml", cwd=tmp_path).strip() == (
        "my-iso/my-iso.yaml: ok (1 guest(s))"
    )
    shown = sh(installed / "xenlive", "show", "--json", "my-iso.yaml", cwd=project)
    assert '"name": "my-iso"' in shown and '"image": "debian"' in shown and '"overlays": [\n      "site"' in shown


def test_a_recipe_anywhere_extends_a_shipped_recipe_and_names_shipped_images_and_overlays(
    installed: Path, tmp_path: Path
) -> None:
    (tmp_path / "mine.yaml").write_text(
        "extends: xen-demo.yaml\niso:\n  name: mine\ndom0:\n  overlays: [xenlive]\n"
        "guests:\n  - {name: a, image: debian}\n  - {name: b, image: debian-systemd}\n"
    )
    assert sh(installed / "xenlive", "validate", "mine.yaml", cwd=tmp_path).strip() == "mine.yaml: ok (2 guest(s))"


def test_the_installed_xenlive_names_its_shipped_recipes_from_any_directory(installed: Path, tmp_path: Path) -> None:
    validated = sh(installed / "xenlive", "validate", "xen-demo.yaml", cwd=tmp_path).strip()
    assert validated.endswith("/xenlive/data/recipes/xen-demo.yaml: ok (3 guest(s))"), validated
    listed = sh(installed / "xenlive", "recipes", cwd=tmp_path).splitlines()
    assert any(line.startswith("xen-demo ") for line in listed) and any(line.startswith("ci ") for line in listed)


def test_the_shipped_scripts_stay_executable(installed: Path) -> None:
    """dom0's initramfs hooks and xenlive-boot must keep their x bit through the wheel."""
    data = next((installed.parent / "lib").glob("python3*/site-packages/xenlive/data"))
    for script in (
        data / "overlays" / "dom0-base" / "etc" / "initramfs-tools" / "hooks" / "xenlive",
        data / "overlays" / "xenlive" / "usr" / "lib" / "xenlive" / "xenlive-boot",
    ):
        assert os.access(script, os.X_OK), script


def test_the_installed_data_is_one_project_and_the_starter_writes_its_marker(installed: Path) -> None:
    """The shipped recipes name the shipped overlays from one project; `init` marks a project's top."""
    data = next((installed.parent / "lib").glob("python3*/site-packages/xenlive/data"))
    assert (data / "xenlive.project").is_file()
    assert (data / "starter" / "xenlive.project").is_file()
