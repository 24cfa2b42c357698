"""recipes/REFERENCE.md: generated from the models, complete, and its examples are valid recipes."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from xenlive import reference
from xenlive.guestimage import GuestImage
from xenlive.recipe import Recipe, load_recipe
from xenlive.schema import key_paths, literal_values

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "recipes" / "REFERENCE.md"
GOOD = ROOT / "tests" / "fixtures" / "good"


def entry(path: str) -> str:
    """The text under the heading of one key, up to the next heading."""
    text = REFERENCE.read_text(encoding="utf-8")
    match = re.search(rf"^#+ `{re.escape(path)}`\n(.*?)(?=^#|\Z)", text, re.S | re.M)
    assert match, f"no entry for `{path}` in {REFERENCE}"
    return match.group(1)


def all_fields() -> list[tuple[str, type[BaseModel], str]]:
    """(path as in the reference, model, field name) for every key of a recipe and a guest image."""
    out = []
    for root, paths in ((Recipe, key_paths(Recipe)), (GuestImage, key_paths(GuestImage))):
        for path in paths:
            model: type[BaseModel] = root
            parts = path.replace("[]", "").split(".")
            for part in parts[:-1]:
                inner = reference.submodel_of(model.model_fields[part].annotation)
                assert inner is not None
                model = inner
            is_list_of_mappings = reference.is_list_of(model.model_fields[parts[-1]].annotation) and (
                reference.submodel_of(model.model_fields[parts[-1]].annotation) is not None
            )
            out.append((f"{path}[]" if is_list_of_mappings else path, model, parts[-1]))
    return out


def test_reference_is_up_to_date_with_the_models() -> None:
    stale = reference.check_reference(REFERENCE)
    assert not stale, f"recipes/REFERENCE.md is out of date; regenerate it with: {reference.REGENERATE}\n" + "".join(
        stale[:40]
    )


def test_check_exits_1_with_a_diff_and_the_command_when_stale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "REFERENCE.md"
    stale.write_text(reference.render_reference().replace("Default: `512`.", "Default: `256`."), encoding="utf-8")
    assert reference.main(["--check", str(stale)]) == 1
    out, err = capsys.readouterr()
    assert "-Type: integer (MiB), from 256 to 1048576. Default: `256`." in out
    assert "+Type: integer (MiB), from 256 to 1048576. Default: `512`." in out
    assert "python -m xenlive.reference > recipes/REFERENCE.md" in err
    stale.write_text(reference.render_reference(), encoding="utf-8")
    assert reference.main(["--check", str(stale)]) == 0


def test_every_key_has_a_description() -> None:
    missing = [path for path, model, name in all_fields() if not model.model_fields[name].description]
    assert not missing, f"describe these fields in the models: {missing}"


@pytest.mark.parametrize(("path", "model", "name"), all_fields(), ids=[f[0] for f in all_fields()])
def test_each_key_states_its_type_default_and_allowed_values(path: str, model: type[BaseModel], name: str) -> None:
    info = model.model_fields[name]
    text = entry(path)
    if reference.submodel_of(info.annotation) is None:
        assert info.description is not None and info.description in text
    assert "**Required.**" in text if info.is_required() else "Default: " in text
    if not info.is_required() and info.default_factory is None and info.default is not None:
        assert f"`{reference.yaml_flow(info.default)}`" in text
    for value in literal_values(info.annotation):
        assert f"`{reference.yaml_flow(value)}`" in text
    for bound in ("ge", "le"):
        for item in info.metadata:
            if hasattr(item, bound):
                assert str(getattr(item, bound)) in text


def test_every_link_in_the_reference_leads_to_a_heading() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    headings = re.findall(r"^#+ (.*)$", text, re.M)
    anchors = [reference.heading_anchor(h) for h in headings]
    assert len(anchors) == len(set(anchors)), "two headings with one anchor: links would go to the first"
    targets = re.findall(r"\]\(#([^)]*)\)", text)
    assert targets
    assert set(targets) <= set(anchors)


def test_the_examples_in_the_reference_are_valid_recipes(tmp_path: Path) -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    examples = re.findall(r"```yaml\n(# (\S+?\.yaml).*?)```", text, re.S)
    names = [name for _, name in examples]
    assert names == ["demo.yaml", "demo-big.yaml", "guest-images/debian.yaml"]
    shutil.copytree(GOOD / "guest-images", tmp_path / "guest-images")
    for body, name in examples:
        (tmp_path / name).write_text(body, encoding="utf-8")
    assert len(load_recipe(tmp_path / "demo.yaml").recipe.guests) == 2
    big = load_recipe(tmp_path / "demo-big.yaml").recipe
    assert (big.iso.volume_label, big.machine.memory) == ("DEMO", 2048)
    assert GuestImage.model_validate(yaml.safe_load((tmp_path / "guest-images" / "debian.yaml").read_text()))
