"""xenlive as users install it (`pipx install .`, or a wheel): the wheel installed into a fresh virtualenv
works from any directory, with the recipes, guest images, overlays and templates it carries: the checkout's
trees, unpacked from the archive in the package (xenlive/data_archive.py).

Needs pip and the network (hatchling to build the wheel, xenlive's dependencies to install it), like any
user's install.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from xenlive import __version__
from xenlive.data_archive import listing

pytestmark = pytest.mark.tools

ROOT = Path(__file__).resolve().parents[2]
CACHE_HOME: dict[str, str] = {}  # XDG_CACHE_HOME of the installed xenlive: the module's own, not the user's

# Every stage's key for a recipe, as build_iso() computes them before running any (as
# tests/unit/test_source_date_epoch.py stage_inputs() does), with stand-in tool versions.
STAGE_KEYS = """
import json, sys
from pathlib import Path
from xenlive.builders import BUILDERS
from xenlive.builders.base import Archive
from xenlive.context import BuildContext
from xenlive.paths import find_recipe
from xenlive.pipeline import BuildOptions, build_dates
from xenlive.recipe import load_recipe
from xenlive.stages import config, dom0, grub, iso
from xenlive.stages.config import config_inputs
from xenlive.stages.dom0 import dom0_inputs
from xenlive.stages.guest import guest_inputs, image_job, unique_images
from xenlive.stages.iso import iso_inputs

probes = (dom0.VERSIONS, config.VERSIONS, grub.VERSIONS, iso.VERSIONS, *(b.versions for b in BUILDERS.values()))
versions = {tool: "stand-in" for probe in probes for tool in probe}
found = {}
for name in sys.argv[1:]:
    loaded = load_recipe(find_recipe(Path(name)))
    options = BuildOptions.make(outdir=Path("out"), cache_dir=Path("c"), source_date_epoch=None)
    context = BuildContext(build_dates(loaded, options), versions)
    archive = Archive(loaded.recipe.dom0.suite, tuple(loaded.recipe.dom0.apt_sources()))
    keys = {"dom0-rootfs": dom0_inputs(loaded.recipe, context).key}
    for image in unique_images(loaded):
        inputs = guest_inputs(image, image_job(context, image, archive, {}))
        keys[inputs.stage] = inputs.key
    keys["dom0-config"] = config_inputs(loaded, context).key
    keys["iso"] = iso_inputs(loaded, keys, context).key
    found[Path(name).stem] = keys
print(json.dumps(found))
"""


def sh(*argv: str | Path, cwd: Path, pythonpath: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(CACHE_HOME)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    proc = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=600
    )
    assert proc.returncode == 0, f"{argv}: {proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    return proc.stdout


def install_wheel(base: Path) -> Path:
    """Build the wheel of this checkout and install it into a fresh virtualenv under base: its bin directory."""
    base.mkdir(parents=True, exist_ok=True)
    sh(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", base / "dist", ROOT, cwd=base)
    (wheel,) = (base / "dist").glob("xenlive-*.whl")
    sh(sys.executable, "-m", "venv", base / "venv", cwd=base)
    sh(base / "venv" / "bin" / "pip", "install", "-q", wheel, cwd=base)
    return base / "venv" / "bin"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin directory of a fresh virtualenv with the wheel built from this checkout installed."""
    base = tmp_path_factory.mktemp("wheel")
    CACHE_HOME["XDG_CACHE_HOME"] = str(base / "cache")
    return install_wheel(base)


def installed_data(installed: Path, cwd: Path) -> Path:
    """The directory of the installed xenlive's data trees (unpacked into its cache on first use)."""
    where = sh(installed / "python", "-c", "import xenlive.paths as p; print(p.data_dir('guest-images'))", cwd=cwd)
    return Path(where.strip()).parent


def test_the_installed_xenlive_is_the_wheels_not_this_checkout(installed: Path, tmp_path: Path) -> None:
    data = installed_data(installed, tmp_path)
    assert data.is_relative_to(CACHE_HOME["XDG_CACHE_HOME"]) and not data.is_relative_to(ROOT), data
    assert sh(installed / "python", "-c", "import xenlive; print(xenlive.__file__)", cwd=tmp_path).startswith(
        str(installed.parent)
    )
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
    assert validated.startswith(f"{CACHE_HOME['XDG_CACHE_HOME']}/xenlive-data/{__version__}-"), validated
    assert validated.endswith("/recipes/xen-demo.yaml: ok (3 guest(s))"), validated
    listed = sh(installed / "xenlive", "recipes", cwd=tmp_path).splitlines()
    assert any(line.startswith("xen-demo ") for line in listed) and any(line.startswith("ci ") for line in listed)


def test_the_installed_data_trees_are_the_checkouts_links_and_modes_included(installed: Path, tmp_path: Path) -> None:
    """The wheel once made runit's links directories and systemd's masks files, left out the runit guest's
    etc/sv/ and got a __pycache__ beside the web console: the guest image's key differed, its getty never ran."""
    data = installed_data(installed, tmp_path)
    assert listing(data) == listing(ROOT)
    assert not list(data.rglob("__pycache__")) and not list(data.rglob("*.pyc"))
    runsvdir = data / "guest-images/init/runit/etc/runit/runsvdir/xenlive"
    assert os.readlink(runsvdir / "xenlive-getty-hvc0") == "../../../sv/xenlive-getty-hvc0"
    # pip's byte-compiling reaches only the package's modules, never the data trees
    (package,) = (installed.parent / "lib").glob("python3*/site-packages/xenlive")
    assert (package / "data.tar").is_file() and not (package / "data").exists()


def test_the_stage_keys_of_a_recipe_are_the_same_from_the_wheel_as_from_the_checkout(
    installed: Path, tmp_path: Path
) -> None:
    """Equal keys: a build with the installed xenlive is the checkout's, stage for stage (the starter project
    is the case that built a guest without a login)."""
    sh(installed / "xenlive", "init", "my-iso", cwd=tmp_path)
    recipes = ("ci", "xen-demo", str(tmp_path / "my-iso" / "my-iso.yaml"))
    from_wheel = json.loads(sh(installed / "python", "-c", STAGE_KEYS, *recipes, cwd=tmp_path))
    from_checkout = json.loads(sh(sys.executable, "-c", STAGE_KEYS, *recipes, cwd=tmp_path, pythonpath=ROOT))
    assert set(from_wheel["ci"]) >= {"dom0-rootfs", "dom0-config", "iso"}
    assert any(stage.startswith("guest-") for stage in from_wheel["my-iso"])
    assert from_wheel == from_checkout


def test_the_shipped_scripts_stay_executable(installed: Path, tmp_path: Path) -> None:
    """dom0's initramfs hooks and xenlive-boot must keep their x bit through the wheel."""
    data = installed_data(installed, tmp_path)
    for script in (
        data / "overlays" / "dom0-base" / "etc" / "initramfs-tools" / "hooks" / "xenlive",
        data / "overlays" / "xenlive" / "usr" / "lib" / "xenlive" / "xenlive-boot",
    ):
        assert os.access(script, os.X_OK), script


def test_the_installed_data_is_one_project_and_the_starter_writes_its_marker(installed: Path, tmp_path: Path) -> None:
    """The shipped recipes name the shipped overlays from one project; `init` marks a project's top."""
    data = installed_data(installed, tmp_path)
    assert (data / "xenlive.project").is_file()
    assert (data / "starter" / "xenlive.project").is_file()
