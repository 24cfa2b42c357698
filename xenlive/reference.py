"""The recipe reference, recipes/REFERENCE.md, generated from the models so that it cannot drift from them.

    python -m xenlive.reference > recipes/REFERENCE.md     # regenerate
    python -m xenlive.reference --check                    # exit 1 and show a diff if it is out of date

Every key gets its type, default and allowed values (from the annotations, constraints and the `unit`,
`form` and `default_text` metadata of the fields) and its description, grouped by section, in the manner
of xl.cfg(5).
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import sys
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import annotated_types
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from xenlive.builders.files import IMAGE_OVERLAY_CONTEXT
from xenlive.guestimage import GuestImage
from xenlive.recipe import Recipe
from xenlive.render import MAX_TEMPLATE_OUTPUT, MAX_TEMPLATE_SECONDS, MAX_TEMPLATE_VALUE
from xenlive.schema import field_extra, literal_values, unwrap_optional
from xenlive.stages.config import GUEST_CONFIG_CONTEXT, OVERLAY_CONTEXT
from xenlive.stages.iso import GRUB_CONTEXT

REFERENCE_PATH = Path(__file__).resolve().parent.parent / "recipes" / "REFERENCE.md"
REGENERATE = "python -m xenlive.reference > recipes/REFERENCE.md"

INTRO = """\
# xenlive recipe reference

<!-- Generated from the models in xenlive/recipe/model.py, xenlive/guestimage.py and xenlive/builders/:
     do not edit by hand. Regenerate with: python -m xenlive.reference > recipes/REFERENCE.md -->

A recipe is a YAML file that describes one bootable Xen live ISO: Xen, a live Debian dom0, and the
guest domains dom0 creates at boot. `xenlive validate RECIPE` checks it, `xenlive show RECIPE` prints
it as resolved (after `extends`, every default filled in), and `xenlive build RECIPE` builds it.

Every key below states its type, its default (or that it is required) and, where it matters, its
allowed values. Unknown keys are errors. Types are strict: `memory: "512"` is text, not a number.
YAML reads unquoted `yes`, `no`, `on`, `off` as booleans and `4.17` as a number, so quote such text:
`hostname: "yes"`, `xen_version: "4.17"`.

## Extending a recipe: `extends`

`extends: PATH` at the top level names a parent recipe, as a path relative to the directory of the
file that contains the key. The parent is read first (it may extend another recipe in turn) and the
child is merged over it:

- mappings merge key by key: a key the child gives overrides the parent's, the others are kept;
- a list (`guests`, `dom0.packages`, `dom0.overlays`, ...) or a single value given by the child
  replaces the parent's entirely;
- a problem in the parent is reported at the parent's file and line.

A recipe cannot extend itself, directly or through others, and a chain holds at most 16 recipes.
`xenlive show` prints the merged result.

## Where names are looked up

A name in a recipe is resolved from the directory of the file that contains it (a key inherited from
a parent recipe, from the parent's directory): first in that directory, then in its parent directory.

- `dom0.overlays`: `NAME` is the directory `overlays/NAME/`; a value containing `/` is a path
  relative to the recipe's directory.
- `guests[].image`: `NAME` is the file `guest-images/NAME.yaml`; a value containing `/` or ending in
  `.yaml` is a path relative to the recipe's directory.
- Paths inside a guest image recipe (`config`, `overlay`) are relative to that file.

So `recipes/demo.yaml` with `image: debian` uses `recipes/guest-images/debian.yaml` if it exists,
else `guest-images/debian.yaml`.

## The recipe's project

A recipe may come from someone else, and xenlive builds as root (of the host, or of an ordinary user's
namespaces): every file a recipe names (parent
recipes, overlays, guest image recipes, and their templates and overlays) must lie in the recipe's
**project**, the directory above the recipe's own (for `recipes/demo.yaml`, the directory that holds
`recipes/`; for a recipe in a top-level directory such as `/tmp`, that directory). Symlinks are
followed to decide: a link in the project that leads out of it is refused too. xenlive's own
overlays and guest images may always be used.

To use files outside the project on purpose, name their directory on the command line:
`xenlive validate|show|build --allow-dir DIR RECIPE` (repeatable). Only the one who runs xenlive can
allow it; no key of a recipe can. Files under `/proc`, `/sys`, `/dev` and `/run` are refused whatever
is allowed. Inside an overlay, symlinks are copied as symlinks, never followed (see
[Templates](#templates) for what a template may include).

## Example

```yaml
# demo.yaml: dom0 and two Debian guests that it starts at boot.
iso:
  name: demo
  volume_label: DEMO
  boot_menu:
    timeout: 3
dom0:
  packages: [tmux]
  memory: 512
machine:
  memory: 1024
guests:
  - name: web
    image: debian
    memory: 128
  - name: db
    image: debian
    type: pvh
    memory: 192
```

```yaml
# demo-big.yaml: the same on a bigger machine. Lists replace the parent's: repeat the guests to keep.
extends: demo.yaml
iso:
  name: demo-big
machine:
  memory: 2048
guests:
  - name: web
    image: debian
    memory: 512
  - name: cache
    image: debian
    autostart: false
```

## Errors

`xenlive validate` reports every problem it finds at once, one per line, as
`FILE:LINE:COLUMN: KEY.PATH: what is wrong (hint: how to fix it)`, and exits with status 2:

```
recipes/demo.yaml:17:13: guests[1].memory: must be an integer (MiB), got "lots"
recipes/demo.yaml:18:11: guests[1].type: must be one of pv, pvh, hvm, got "kvm" (hint: did you mean 'hvm'?)
```

Besides each key's own type and values, it checks that the named overlays and guest images exist,
that guest names are unique and differ from dom0's hostname, that each guest's `type` is one its
image supports and its `memory` at least the image's `min_memory`, that `dom0.suite` is supported,
and that Xen (64 MiB), dom0 and the autostart guests fit in `machine.memory`.
"""

GUEST_IMAGE_INTRO = """\
## Guest image recipes

A guest image recipe, `guest-images/NAME.yaml`, says how the disk, kernel and xl config of a guest are
made; every guest names one with `image`. Several guests may share one image. Problems in it are
reported at its own file and line.

```yaml
# guest-images/debian.yaml
description: Debian (systemd), booted from an uncompressed kernel
packages: [iproute2]
types: [pv, pvh]
config: debian.cfg.j2
overlay: debian
```
"""


TEMPLATES_INTRO = f"""\
## Templates

xenlive renders these files with jinja2: the boot menu (`grub/grub.cfg.j2`), each guest image's
`config` (its xl config, once per guest), files ending in `.j2` in dom0's overlays (`dom0.overlays`
and xenlive's own), and files ending in `.j2` in the overlay of a `netbsd` or `freebsd` guest image
(the Debian builders copy a guest image's overlay as it is). A rendered file loses the `.j2`.

A template may come from someone else and is rendered as root (of the host, or of a user's namespaces) on
the build host, so it runs in jinja2's immutable sandbox:

- it sees only the names listed below for its kind; of the recipe, only its keys and the helpers
  named. Attributes starting with `_`, Python's internals and the models' own methods are refused;
- it changes nothing it is given (no `.append()`, no `.update()`);
- `*` and `**` make no text, list or number larger than {MAX_TEMPLATE_VALUE} characters, items or bits;
- nothing it makes is larger than {MAX_TEMPLATE_OUTPUT >> 20} MiB, counted before it is made where the size
  depends on an argument: `+`, `~`, `%`, `str.format` and the str methods' widths (`center`, `ljust`,
  `zfill`, `expandtabs`, `replace`, `join`), jinja2's filters that take a size or a text to repeat
  (`center`, `indent`, `format`, `join`, `slice`, `batch`, `wordwrap`), `lipsum`, the text of a
  `{{% set %}}` block or a macro; a list or mapping counts its items and texts as often as they repeat,
  which is what printing it makes. Every value a call or filter returns is measured the same way;
- its output is at most {MAX_TEMPLATE_OUTPUT >> 20} MiB, and it renders for at most {MAX_TEMPLATE_SECONDS} s:
  both are checked while it renders (a loop is stopped where it runs), not after;
- of an IP network (`recipe.network.network`) it sees a small read-only view: `network_address`,
  `broadcast_address`, `netmask`, `hostmask`, `prefixlen`, `num_addresses`, `with_prefixlen`,
  `with_netmask`, and its text `10.0.3.0/24`; none of Python's `IPv4Network` methods (`hosts()`,
  `subnets()`, `supernet()`), which make lists without bound;
- `{{% include %}}`, `{{% import %}}` and `{{% extends %}}` read only files beside the template whose real
  path (symlinks followed) lies in its tree: the overlay for an overlay file, the template's own
  directory for the boot menu and xl configs. Each is read as every input file is: a regular file
  of at most 256 KiB, UTF-8 text;
- a name that is not defined is an error, not empty text. jinja2's own filters, tests and globals
  (`join`, `replace`, `range`, `loop`, ...) work as jinja2 documents them.

Anything a template gets wrong, or tries that the sandbox refuses, is one error naming the template's
file and line.
"""

TEMPLATE_KINDS = (
    ("dom0 overlay files (`.j2`)", OVERLAY_CONTEXT),
    ("Guest config templates (`config` of a guest image)", GUEST_CONFIG_CONTEXT),
    ("The boot menu (`grub/grub.cfg.j2`)", GRUB_CONTEXT),
    ("Guest image overlay files (`.j2`, builders `netbsd` and `freebsd`)", IMAGE_OVERLAY_CONTEXT),
)


def _templates_section() -> str:
    parts = [TEMPLATES_INTRO]
    for title, context in TEMPLATE_KINDS:
        rows = "\n".join(f"| `{name}` | {what} |" for name, what in context.items())
        parts.append(f"### {title}\n\n| name | what it is |\n|---|---|\n{rows}\n")
    return "\n".join(parts)


def render_reference() -> str:
    """The whole of recipes/REFERENCE.md."""
    parts = [INTRO, "## Recipe keys\n", _top_level_section(), *_model_sections(Recipe, "")]
    parts += [
        GUEST_IMAGE_INTRO,
        _keys_section("### Guest image keys", GuestImage, ""),
        *_model_sections(GuestImage, ""),
        _templates_section(),
    ]
    return "\n".join(parts).rstrip("\n") + "\n"


def check_reference(path: Path = REFERENCE_PATH) -> list[str]:
    """A unified diff from `path` to the reference the models give now; empty when `path` is up to date."""
    current = path.read_text(encoding="utf-8").splitlines(keepends=True) if path.exists() else []
    wanted = render_reference().splitlines(keepends=True)
    return list(difflib.unified_diff(current, wanted, str(path), "generated from the models"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xenlive.reference", description="Print the recipe reference.")
    parser.add_argument(
        "--check",
        nargs="?",
        const=REFERENCE_PATH,
        type=Path,
        metavar="PATH",
        help=f"compare PATH (default: {REFERENCE_PATH}) with the models; exit 1 if it differs",
    )
    args = parser.parse_args(argv)
    if args.check is None:
        sys.stdout.write(render_reference())
        return 0
    diff = check_reference(args.check)
    if diff:
        sys.stdout.writelines(diff)
        sys.stderr.write(f"{args.check} is out of date with the models; regenerate it with: {REGENERATE}\n")
        return 1
    return 0


# ---- sections and entries ----------------------------------------------------------------------------


def _top_level_section() -> str:
    keys = ", ".join(_key_link(name, name) for name in Recipe.model_fields)
    return (
        "### Top level\n\n"
        f"A recipe file holds the keys `extends`, {keys}. Only `iso` is required.\n\n"
        "#### `extends`\n\nType: text, a path. Default: none.\n\n"
        "Parent recipe this one is merged over, relative to this file's directory; see "
        "[Extending a recipe](#extending-a-recipe-extends).\n"
    )


def _model_sections(model: type[BaseModel], prefix: str) -> list[str]:
    """A section for each key of `model` that is itself a mapping (or a list of them), depth first."""
    out: list[str] = []
    for name, info in model.model_fields.items():
        inner = submodel_of(info.annotation)
        if inner is None:
            continue
        path = f"{prefix}{name}{'[]' if is_list_of(info.annotation) else ''}"
        keys = ", ".join(_key_link(f"{path}.{sub}", sub) for sub in inner.model_fields)
        kind = "list of mappings, each with the keys" if is_list_of(info.annotation) else "mapping with the keys"
        # The section says what the key is through the model's docstring, not the (shorter) field description.
        head = f"### `{path}`\n\nType: {kind} {keys}. {_default_words(info)}"
        out.append(_keys_section(head, inner, f"{path}."))
        out += _model_sections(inner, f"{path}.")
    return out


def _keys_section(head: str, model: type[BaseModel], prefix: str) -> str:
    """A heading (and what to say under it), the model's docstring, and an entry for each plain key."""
    doc = inspect.cleandoc(model.__doc__ or "")
    lines = [f"{head}\n", f"{doc}\n" if doc else ""]
    for name, info in model.model_fields.items():
        if submodel_of(info.annotation) is None:
            lines.append(_entry(f"{prefix}{name}", info))
    return "\n".join(line for line in lines if line)


def _key_link(path: str, name: str) -> str:
    """`name`, linked to the heading of its entry or section."""
    return f"[`{name}`](#{heading_anchor(path)})"


def _entry(path: str, info: FieldInfo) -> str:
    """One key: heading, a line with its type and default, then its description."""
    return f"#### `{path}`\n\nType: {describe_type(info)}. {_default_words(info)}\n\n{info.description or ''}\n"


def _default_words(info: FieldInfo) -> str:
    return "**Required.**" if info.is_required() else f"Default: {describe_default(info)}."


def describe_type(info: FieldInfo) -> str:
    """The type of a key in words, with its unit, form and bounds: 'integer (MiB), at least 256'."""
    annotation, _optional = unwrap_optional(info.annotation)
    extra = field_extra(info)
    words = _type_words(annotation)
    if "unit" in extra:
        words += f" ({extra['unit']})"
    if "form" in extra:
        words += f" ({extra['form']})"
    words += _bounds(info)
    return words


def _type_words(annotation: Any) -> str:
    if typing.get_origin(annotation) is Annotated:  # constraints inside an optional: `Annotated[str, ...] | None`
        return _type_words(typing.get_args(annotation)[0])
    if annotation is str:
        return "text"
    if annotation is int:
        return "integer"
    if annotation is bool:
        return "boolean (`true` or `false`)"
    if typing.get_origin(annotation) is Literal:
        return "one of " + ", ".join(f"`{yaml_flow(v)}`" for v in literal_values(annotation))
    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation)
        if typing.get_origin(item) is Literal:
            return "list, each item one of " + ", ".join(f"`{yaml_flow(v)}`" for v in literal_values(item))
        return f"list of {_type_words(item)}"
    raise TypeError(f"no words for the type {annotation!r}: teach xenlive.reference about it")


def _bounds(info: FieldInfo) -> str:
    low = high = min_length = max_length = None
    for item in info.metadata:
        if isinstance(item, annotated_types.Ge):
            low = item.ge
        elif isinstance(item, annotated_types.Le):
            high = item.le
        elif isinstance(item, annotated_types.MinLen):
            min_length = item.min_length
        elif isinstance(item, annotated_types.MaxLen):
            max_length = item.max_length
    if max_length is not None:
        return f", at most {max_length} characters"
    if low is not None and high is not None:
        return f", from {low} to {high}"
    if low is not None:
        return f", at least {low}"
    if high is not None:
        return f", at most {high}"
    if min_length:
        return ", at least one item" if min_length == 1 else f", at least {min_length} items"
    return ""


def describe_default(info: FieldInfo) -> str:
    """The default of an optional key as YAML in backticks, or in words where it is computed."""
    extra = field_extra(info)
    if "default_text" in extra:
        return str(extra["default_text"])
    if info.default_factory is not None:
        return "the defaults of its keys"
    return f"`{yaml_flow(info.default)}`"


def yaml_flow(value: Any) -> str:
    """A value as one line of YAML, quoted only where YAML needs it: `[main]`, `'4.17'`, `''`."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def submodel_of(annotation: Any) -> type[BaseModel] | None:
    annotation, _optional = unwrap_optional(annotation)
    if typing.get_origin(annotation) is list:
        (annotation,) = typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def is_list_of(annotation: Any) -> bool:
    return typing.get_origin(unwrap_optional(annotation)[0]) is list


def heading_anchor(path: str) -> str:
    """The GitHub anchor of a heading "### `path`"."""
    return "".join(c for c in path.lower() if c.isalnum() or c in "-_ ").replace(" ", "-")


if __name__ == "__main__":
    sys.exit(main())
