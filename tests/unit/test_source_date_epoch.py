"""Which time each stage dates its output by, and what that means for sharing stages between recipes.

A stage's key covers what it reads and nothing else: two recipes share every stage they have in common, and
committing a recipe (a comment, say) reruns no stage, since no stage's date comes from the commit (with
the real git: tests/tools/test_source_date_epoch.py).
"""

from __future__ import annotations

import calendar
import shutil
from pathlib import Path

import pytest

from tests.conftest import STAND_IN_VERSIONS
from xenlive.builders.base import Archive
from xenlive.cache import StageInputs
from xenlive.cli import environment_epoch
from xenlive.context import DEFAULT_EPOCH, BuildContext, Dates, snapshot_time
from xenlive.pipeline import BuildOptions, build_dates
from xenlive.recipe import LoadedRecipe, load_recipe
from xenlive.stages.config import config_inputs
from xenlive.stages.dom0 import dom0_inputs
from xenlive.stages.guest import guest_inputs, image_job, unique_images
from xenlive.stages.iso import iso_inputs

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT = "deb http://snapshot.debian.org/archive/debian/20261101T120000Z bookworm main"
SECURITY_SNAPSHOT = "deb http://snapshot.debian.org/archive/debian-security/20261102T000000Z bookworm-security main"


def stage_inputs(loaded: LoadedRecipe, environment: int | None = None) -> dict[str, StageInputs]:
    """Every stage's inputs for a recipe, as build_iso() computes them (upstream keys from the inputs: a stage's
    key is known before it runs)."""
    context = BuildContext(
        build_dates(loaded, BuildOptions.make(outdir=Path("out"), cache_dir=Path("c"), source_date_epoch=environment)),
        STAND_IN_VERSIONS,
    )
    archive = Archive(loaded.recipe.dom0.suite, tuple(loaded.recipe.dom0.apt_sources()))
    found = {"dom0-rootfs": dom0_inputs(loaded.recipe, context)}
    for image in unique_images(loaded):
        inputs = guest_inputs(image, image_job(context, image, archive, {}))
        found[inputs.stage] = inputs
    found["dom0-config"] = config_inputs(loaded, context)
    found["iso"] = iso_inputs(loaded, {name: inputs.key for name, inputs in found.items()}, context)
    return found


def test_without_a_date_every_stage_is_dated_by_the_fixed_epoch() -> None:
    assert calendar.timegm((2024, 1, 1, 0, 0, 0)) == DEFAULT_EPOCH
    dates = Dates()
    assert (dates.of_recipe(), dates.of_archive(["deb http://deb.debian.org/debian bookworm main"]), dates.fixed()) == (
        DEFAULT_EPOCH,
        DEFAULT_EPOCH,
        DEFAULT_EPOCH,
    )


def test_the_recipes_date_dates_only_the_stages_that_read_the_recipe() -> None:
    dates = Dates(recipe=1700000000)
    assert dates.of_recipe() == 1700000000
    assert dates.of_archive([SNAPSHOT]) == snapshot_time([SNAPSHOT])
    assert dates.fixed() == DEFAULT_EPOCH


def test_source_date_epoch_from_the_environment_dates_every_stage_but_yields_to_the_recipes() -> None:
    assert Dates(environment=1600000000).of_archive([SNAPSHOT]) == 1600000000
    assert Dates(environment=1600000000).fixed() == 1600000000
    assert Dates(environment=1600000000).of_recipe() == 1600000000
    assert Dates(environment=1600000000, recipe=1700000000).of_recipe() == 1700000000


def test_a_snapshot_archive_dates_the_debian_stages_by_its_newest_time() -> None:
    assert snapshot_time([SNAPSHOT]) == calendar.timegm((2026, 11, 1, 12, 0, 0))
    assert snapshot_time([SNAPSHOT, SECURITY_SNAPSHOT]) == calendar.timegm((2026, 11, 2, 0, 0, 0))
    # An archive that is not all snapshots names no state: the fixed date.
    assert snapshot_time([SNAPSHOT, "deb http://deb.debian.org/debian-security bookworm-security main"]) is None
    assert snapshot_time(["deb http://deb.debian.org/debian bookworm main"]) is None


@pytest.mark.parametrize(("value", "epoch"), [("1600000000", 1600000000), ("", None), ("yesterday", None)])
def test_the_build_command_takes_source_date_epoch_from_its_environment_when_it_is_a_number(
    monkeypatch: pytest.MonkeyPatch, value: str, epoch: int | None
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", value)
    assert environment_epoch() == epoch


def test_two_recipes_share_every_stage_they_have_in_common(tmp_path: Path) -> None:
    """The demo and the CI recipe have the same dom0 and the same Debian guest image, but not the same ISO."""
    demo = stage_inputs(load_recipe(ROOT / "recipes" / "xen-demo.yaml"))
    ci = stage_inputs(load_recipe(ROOT / "recipes" / "ci.yaml"))
    assert demo["dom0-rootfs"].key == ci["dom0-rootfs"].key
    assert demo["guest-debian"].key == ci["guest-debian"].key
    assert demo["dom0-config"].key != ci["dom0-config"].key
    assert demo["iso"].key != ci["iso"].key


def test_a_recipe_naming_its_own_date_still_shares_dom0_and_the_guest_images(tmp_path: Path) -> None:
    recipe = tmp_path / "dated.yaml"
    recipe.write_text(f"extends: {ROOT / 'recipes' / 'ci.yaml'}\niso:\n  source_date_epoch: 1700000000\n")
    dated = stage_inputs(load_recipe(recipe))
    ci = stage_inputs(load_recipe(ROOT / "recipes" / "ci.yaml"))
    assert dated["dom0-rootfs"].key == ci["dom0-rootfs"].key
    assert dated["guest-debian"].key == ci["guest-debian"].key
    assert dated["dom0-config"].epoch == dated["iso"].epoch == 1700000000
    assert dated["iso"].key != ci["iso"].key


def copy_project(target: Path) -> Path:
    """The shipped recipes, guest images and overlays, outside this checkout."""
    for name in ("recipes", "guest-images", "overlays"):
        shutil.copytree(ROOT / name, target / name, symlinks=True)
    shutil.copy(ROOT / "xenlive.project", target)
    return target
