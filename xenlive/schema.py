"""Walking the models: the field at a key path, every key path of a model, the values a Literal allows,
and the xenlive metadata of a field (unit, form, default_text) that messages and the reference show."""

from __future__ import annotations

import types
import typing
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from xenlive.yamlpos import KeyPath


def field_extra(info: FieldInfo | None) -> dict[str, Any]:
    """The xenlive metadata of a field (`unit`, `form`, `default_text`), from its json_schema_extra."""
    extra = info.json_schema_extra if info is not None else None
    return dict(extra) if isinstance(extra, dict) else {}


def field_at(root: type[BaseModel], loc: KeyPath) -> FieldInfo | None:
    """The field a key path ends in (list indexes skipped), or None if the path leaves the models."""
    model: type[BaseModel] | None = root
    info: FieldInfo | None = None
    for part in loc:
        if isinstance(part, int):
            continue
        if model is None or part not in model.model_fields:
            return None
        info = model.model_fields[part]
        model = inner_model(info.annotation)
    return info


def model_at(root: type[BaseModel], loc: KeyPath) -> type[BaseModel] | None:
    """The model a key path points into: () is root, ('guests', 1) is Guest."""
    if not [p for p in loc if isinstance(p, str)]:
        return root
    info = field_at(root, loc)
    return inner_model(info.annotation) if info is not None else None


def key_paths(root: type[BaseModel], prefix: str = "") -> list[str]:
    """Every key of a model and its submodels, as 'dom0.hostname' and 'guests[].memory'."""
    out: list[str] = []
    for name, info in root.model_fields.items():
        path = f"{prefix}{name}"
        out.append(path)
        inner = inner_model(info.annotation)
        if inner is not None:
            is_list = typing.get_origin(unwrap_optional(info.annotation)[0]) is list
            out += key_paths(inner, f"{path}[]." if is_list else f"{path}.")
    return out


def inner_model(annotation: Any) -> type[BaseModel] | None:
    """The model class inside an annotation like `list[Guest]` or `Mirror | None`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = inner_model(arg)
        if found is not None:
            return found
    return None


def literal_values(annotation: Any) -> list[Any]:
    """The allowed values of a Literal inside an annotation (`list[Literal['pv', 'pvh']]` too)."""
    if typing.get_origin(annotation) is Literal:
        return list(typing.get_args(annotation))
    for arg in typing.get_args(annotation):
        found = literal_values(arg)
        if found:
            return found
    return []


def unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    """`X | None` -> (X, True); anything else -> (annotation, False)."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(annotation)) == 2:
            return args[0], True
    return annotation, False
