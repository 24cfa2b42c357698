"""Templates: grub.cfg, xl guest configs and `.j2` overlay files, rendered by jinja2 with StrictUndefined.

A template may come from someone else, and it is rendered as root on the build host: it runs in jinja2's
immutable sandbox. It sees only the context it is given (of a model, only its keys and the helpers the
model declares in TEMPLATE_HELPERS), changes nothing it is given, makes no value that would fill the build
host's memory, and includes only files of its own tree, never through a symlink that leads out of it.

A template that cannot be rendered (a syntax error, an undefined name, an include of a missing file,
an error in an expression such as a division by zero, a file that is not UTF-8, something the sandbox
refuses) is an InputFileError of one line that names the template file and line.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jinja2
import jinja2.loaders
import jinja2.sandbox
from pydantic import BaseModel

from xenlive.errors import InputFileError, ToolError
from xenlive.fsutil import install_tree
from xenlive.inputs import UnusableFile, read_input_file

# The largest string or list (items) and integer (bits) an expression in a template may make.
MAX_TEMPLATE_VALUE = 2**20
# The first jinja2 whose sandbox holds against every escape known: 3.1.5 let `|attr('format')` reach
# str.format unchecked (CVE-2025-27516), which read the build host's environment into a template's output.
JINJA2_SAFE = (3, 1, 6)


def check_jinja2() -> None:
    """Refuse to render with a jinja2 older than JINJA2_SAFE (pyproject.toml requires it; a distribution's
    package may be older)."""
    have = tuple(int(part) if part.isdigit() else 0 for part in jinja2.__version__.split(".")[:3])
    if have < JINJA2_SAFE:
        want = ".".join(map(str, JINJA2_SAFE))
        raise ToolError(
            f"jinja2 {jinja2.__version__} is too old to render templates safely (its sandbox can be escaped); "
            f"install jinja2>={want}, e.g. with pip install 'jinja2>={want}'"
        )


class _Loader(jinja2.BaseLoader):
    """Templates from one directory, as jinja2's FileSystemLoader finds them, read as xenlive reads every
    input file: regular files of bounded size only, and UTF-8 or a located error; and only files whose real
    path lies in the tree `root`. Remembers what it loaded, to find the template line in a traceback."""

    def __init__(self, search: Path, root: Path) -> None:
        self.search = search
        self.root = root
        self.loaded: set[str] = set()

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        path = self.search.joinpath(*jinja2.loaders.split_template_path(template))
        real, root = os.path.realpath(path), os.path.realpath(self.root)
        if os.path.lexists(path) and os.path.commonpath([real, root]) != root:
            hint = "a template includes only files of its own tree"
            raise InputFileError(f"{path}: leads to {real}, outside the template's tree {self.root} (hint: {hint})")
        try:
            raw = read_input_file(path)
        except (FileNotFoundError, NotADirectoryError):
            raise jinja2.TemplateNotFound(template) from None
        except UnusableFile as exc:
            raise InputFileError(f"{path}: {exc.reason} (hint: {exc.hint})") from None
        except OSError as exc:
            raise InputFileError(f"{path}: cannot read: {exc.strerror}") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
            raise InputFileError(
                f"{path}:{line}:{column}: not UTF-8 text ({exc.reason}) (hint: save it as UTF-8)"
            ) from None
        self.loaded.add(str(path))
        return text, str(path), lambda: False


class _Sandbox(jinja2.sandbox.ImmutableSandboxedEnvironment):
    """jinja2's immutable sandbox (no `_` attributes, no changes to lists and dicts, no unsafe callables),
    which of a model shows only its keys and the helpers it lists in TEMPLATE_HELPERS, and bounds the
    values `*` and `**` make."""

    intercepted_binops = frozenset({"*", "**"})

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, BaseModel):
            model = type(obj)
            if attr not in model.model_fields and attr not in getattr(model, "TEMPLATE_HELPERS", ()):
                return False
        return bool(super().is_safe_attribute(obj, attr, value))

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and _too_large_power(left, right):
            raise jinja2.exceptions.SecurityError(f"{left} ** {right} is too large a number for a template")
        if operator == "*" and (_too_large_repeat(left, right) or _too_large_repeat(right, left)):
            raise jinja2.exceptions.SecurityError("a repeated text or list would be too large for a template")
        return super().call_binop(context, operator, left, right)


def _too_large_power(base: Any, exponent: Any) -> bool:
    if not (isinstance(base, int) and isinstance(exponent, int)):
        return False
    return exponent > 0 and abs(base) > 1 and base.bit_length() * exponent > MAX_TEMPLATE_VALUE


def _too_large_repeat(sized: Any, times: Any) -> bool:
    return isinstance(sized, str | list | tuple) and isinstance(times, int) and len(sized) * times > MAX_TEMPLATE_VALUE


def _environment(loader: jinja2.BaseLoader) -> jinja2.Environment:
    return _Sandbox(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render_template(path: Path, context: Mapping[str, Any], root: Path | None = None) -> str:
    """Render one template file in the sandbox; any failure is an InputFileError naming the template file
    and line. It includes files from its own directory, whose real paths must lie in `root` (default: that
    directory)."""
    check_jinja2()
    loader = _Loader(path.parent, root if root is not None else path.parent)
    try:
        return _environment(loader).get_template(path.name).render(**context)
    except InputFileError:
        raise
    except jinja2.TemplateSyntaxError as exc:
        raise InputFileError(f"{exc.filename or path}:{exc.lineno}: template syntax error: {exc.message}") from None
    except jinja2.TemplateNotFound as exc:
        where = _template_line(exc, loader, path)
        hint = f"a template includes files from {path.parent}"
        raise InputFileError(f"{where}: includes {exc.name}, which does not exist (hint: {hint})") from None
    except jinja2.UndefinedError as exc:
        where = _template_line(exc, loader, path)
        raise InputFileError(f"{where}: template uses an undefined value: {_one_line(exc)}") from None
    except Exception as exc:  # whatever an expression in the template raised: 1 // 0, a filter's error, ...
        where = _template_line(exc, loader, path)
        raise InputFileError(f"{where}: template failed: {_one_line(exc)} ({type(exc).__name__})") from None


def _template_line(exc: BaseException, loader: _Loader, path: Path) -> str:
    """FILE:LINE of the innermost template frame of exc's traceback (jinja2 maps its frames to template
    lines), else the path of the template rendered."""
    where = str(path)
    for frame, line in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename in loader.loaded:
            where = f"{frame.f_code.co_filename}:{line}"
    return where


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def render_tree(src: Path, dst: Path, context: Mapping[str, Any]) -> list[str]:
    """Lay the tree src into dst (fsutil.install_tree(): never outside dst, symlinks copied as such, modes
    kept); files ending in .j2 are rendered and lose the suffix. Returns the relative paths written."""
    return install_tree(src, dst, lambda template: render_template(template, context, root=src))
