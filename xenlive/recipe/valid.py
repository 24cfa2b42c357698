"""What is valid, for the checks: the merged data of a recipe, read key by key.

The checks (recipe/files.py, recipe/checks.py) read each key only if it is valid by itself, so that they
run even when other keys have errors (those errors are reported by the validation of the whole recipe).
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

M = TypeVar("M", bound=BaseModel)


def section(data: dict[str, Any], name: str) -> Any:
    return data.get(name, {})


def guests_of(data: dict[str, Any]) -> list[Any]:
    raw = data.get("guests", [])
    return raw if isinstance(raw, list) else []


def valid_value(model: type[BaseModel], section: Any, name: str) -> Any:
    """The value of key `name` of a section (its default if absent), or None if the key is invalid."""
    if not isinstance(section, dict):
        return None
    info = model.model_fields[name]
    if name not in section:
        return None if info.is_required() else info.get_default(call_default_factory=True)
    field_type: Any = Annotated[info.annotation, info]  # the key's type with its constraints
    adapter: TypeAdapter[Any] = TypeAdapter(field_type, config=ConfigDict(strict=True))
    try:
        return adapter.validate_python(section[name])
    except ValidationError:
        return None


def valid_or_none(model: type[M], section: Any) -> M | None:
    try:
        return model.model_validate(section)
    except ValidationError:
        return None
