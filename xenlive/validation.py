"""Located validation: a YAML file's data checked against a strict pydantic model, each validation error
turned into a Problem that reads `file:line:column: key.path: what is wrong (hint: how to fix it)`."""

from __future__ import annotations

import difflib
import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from xenlive.errors import Problem
from xenlive.schema import field_at, field_extra, inner_model, key_paths, literal_values, model_at
from xenlive.yamlpos import KeyPath, Located, kind_of

M = TypeVar("M", bound=BaseModel)


def validate_located(model: type[M], located: Located) -> tuple[M | None, list[Problem]]:
    """Validate located.data against `model`: the instance, or None and one Problem per error."""
    try:
        return model.model_validate(located.data), []
    except ValidationError as exc:
        return None, [problem_from_error(err, located, model) for err in exc.errors()]


def problem_from_error(err: Any, located: Located, root: type[BaseModel]) -> Problem:
    """One pydantic error as a located Problem with a plain message and, where it helps, a hint."""
    loc: KeyPath = tuple(err["loc"])
    kind = err["type"]
    info = field_at(root, loc)
    if kind == "extra_forbidden":
        return located.problem(loc, "unknown key", _unknown_key_hint(root, loc), at_key=True)
    if kind == "missing":
        return located.problem(loc, "required key is missing", _missing_hint(str(loc[-1]), info))
    message, hint = _describe(kind, err, located.texts.get(loc), info)
    return located.problem(loc, message, hint)


def _describe(kind: str, err: Any, text: str | None, info: FieldInfo | None) -> tuple[str, str]:
    value, ctx = err.get("input"), err.get("ctx") or {}
    extra = field_extra(info)
    unit = f" ({extra['unit']})" if "unit" in extra else ""
    got = _got(value, text)
    quote = f'quote it: "{text}"' if text is not None and not isinstance(value, str | dict | list) else ""
    if kind == "int_type":
        return f"must be an integer{unit}, got {got}", ""
    if kind == "string_type":
        if value is None:
            return "must be text, but the value is empty", "give a value or remove the key"
        if text is not None and not isinstance(value, dict | list):
            return f"must be text, but YAML reads {text} as {kind_of(value)}", quote
        return f"must be text, got {got}", ""
    if kind == "bool_type":
        return f"must be true or false, got {got}", ""
    if kind == "list_type":
        hint = f"write [{text}] or put each item on its own line after '- '" if text is not None else ""
        return f"must be a list, got {got}", hint
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        model = inner_model(info.annotation) if info is not None else None
        hint = f"allowed keys: {', '.join(model.model_fields)}" if model is not None else ""
        return f"must be a mapping of keys, got {got}", hint
    if kind == "literal_error":
        allowed = literal_values(info.annotation) if info is not None else []
        shown = ", ".join(str(v) for v in allowed) or ctx.get("expected", "")
        if isinstance(value, str):
            close = difflib.get_close_matches(value, [str(v) for v in allowed], n=1)
            return f"must be one of {shown}, got {got}", f"did you mean '{close[0]}'?" if close else ""
        if text is not None and all(isinstance(v, str) for v in allowed):
            return f"must be one of {shown}, but YAML reads {text} as {kind_of(value)}", quote
        return f"must be one of {shown}, got {got}", ""
    if kind == "string_pattern_mismatch":
        form = extra.get("form") or f"text matching {ctx.get('pattern')}"
        return f"must be {form}, got {got}", ""
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}{unit}, got {got}", ""
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le')}{unit}, got {got}", ""
    if kind == "too_short":
        return "must not be empty", "give at least one item"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters long, got {len(value)}", ""
    if kind == "value_error" and ctx.get("error") is not None:
        return str(ctx["error"]), ""
    return str(err["msg"]).lower(), ""


def _missing_hint(key: str, info: FieldInfo | None) -> str:
    model = inner_model(info.annotation) if info is not None else None
    if model is not None:
        required = [f"`{name}:`" for name, sub in model.model_fields.items() if sub.is_required()]
        return f"add `{key}:` with at least {', '.join(required)}" if required else f"add `{key}:`"
    if info is not None and info.description:
        return f"add `{key}:`, the {info.description[0].lower()}{info.description[1:].rstrip('.')}"
    return f"add `{key}:`"


def _got(value: Any, text: str | None) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict | list) or value is None:
        return kind_of(value)
    return text if text is not None else repr(value)


def _unknown_key_hint(root: type[BaseModel], loc: KeyPath) -> str:
    model = model_at(root, loc[:-1])
    if model is None:
        return ""
    name = str(loc[-1])
    fields = list(model.model_fields)
    close = difflib.get_close_matches(name, fields, n=1)
    if close:
        return f"did you mean '{close[0]}'?"
    parents = sorted({p.rpartition(".")[0] or "the top level" for p in key_paths(root) if p.rpartition(".")[2] == name})
    if parents:
        return f"'{name}' belongs in {' or '.join(parents)}"
    return f"allowed keys here: {', '.join(fields)}"
