"""Templates: grub.cfg, xl guest configs and `.j2` overlay files, rendered by jinja2 with StrictUndefined.

A template may come from someone else, and it is rendered as root on the build host: it runs in jinja2's
immutable sandbox. It sees only the context it is given (of a model, only its keys and the helpers the
model declares in TEMPLATE_HELPERS; of a network, a small view), changes nothing it is given, makes no value
that would fill the build host's memory, and includes only files of its own tree, never through a symlink
that leads out of it.

Its output and its time are bounded while it renders, not after: its output is counted as it is generated
(MAX_TEMPLATE_OUTPUT), and a trace function checks a deadline (MAX_TEMPLATE_SECONDS) on every line the
template's own code runs. Each step that could make much from little is bounded before it runs: `*`, `**`,
`+`, `%` and `~`, the str methods and str.format with a width, jinja2's filters that take a size or a text
to repeat, the buffers of `{% set %}` blocks and macros; and every value a call or filter returns, and every
list or mapping a template writes, is measured (`size()`: its texts' characters and its items, counted as
often as they repeat, which is what printing it would make).

A template that cannot be rendered (a syntax error, an undefined name, an include of a missing file,
an error in an expression such as a division by zero, a file that is not UTF-8, something the sandbox
refuses) is an InputFileError of one line that names the template file and line.
"""

from __future__ import annotations

import functools
import inspect
import ipaddress
import os
import re
import string
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import jinja2
import jinja2.compiler
import jinja2.loaders
import jinja2.nodes
import jinja2.sandbox
from jinja2.exceptions import SecurityError
from pydantic import BaseModel

from xenlive.errors import InputFileError, ToolError
from xenlive.fsutil import install_tree
from xenlive.inputs import UnusableFile, read_input_file

# The largest string or list (items) and integer (bits) an expression in a template may make with * or **.
MAX_TEMPLATE_VALUE = 2**20
# The most a template may write (characters), and the largest value it may make by any means (size()).
MAX_TEMPLATE_OUTPUT = 16 << 20
# The longest a template may render (seconds).
MAX_TEMPLATE_SECONDS = 10
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


@dataclass(frozen=True)
class NetworkView:
    """What a template sees of an IP network (`recipe.network.network`): its addresses and sizes, and none of
    IPv4Network's methods, which make lists without bound (`supernet(new_prefix=0).hosts()`)."""

    network_address: ipaddress.IPv4Address | ipaddress.IPv6Address
    broadcast_address: ipaddress.IPv4Address | ipaddress.IPv6Address
    netmask: ipaddress.IPv4Address | ipaddress.IPv6Address
    hostmask: ipaddress.IPv4Address | ipaddress.IPv6Address
    prefixlen: int
    num_addresses: int
    with_prefixlen: str
    with_netmask: str

    @classmethod
    def of(cls, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> NetworkView:
        return cls(
            network.network_address,
            network.broadcast_address,
            network.netmask,
            network.hostmask,
            network.prefixlen,
            network.num_addresses,
            network.with_prefixlen,
            network.with_netmask,
        )

    def __str__(self) -> str:
        return self.with_prefixlen


_WORD = 2**64  # an int below it prints in a few characters


def size(value: Any, limit: int = MAX_TEMPLATE_OUTPUT) -> int:
    """How much printing `value` would make, roughly: the characters of its texts and one per item of its
    lists and mappings, counted as often as they occur. Stops counting once above `limit`."""
    total, stack = 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, bool | float) or item is None:
            total += 1
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 1
        elif isinstance(item, list | tuple | set | frozenset):
            total += 3 * len(item) + 1  # an item prints as at least "x, "
            if total > limit or not item:
                continue
            # Long lists of one simple kind are measured in C: Python's loop would take seconds.
            kinds = set(map(type, item))
            if kinds <= {str}:
                total += sum(map(len, item))
            elif kinds <= {int, bool} and min(item) > -_WORD and max(item) < _WORD:
                pass
            elif not kinds <= {float, bool, type(None)}:
                stack.extend(item)
        elif isinstance(item, dict):
            total += 2 * len(item) + 1
            if total <= limit:
                stack.extend(item.keys())
                stack.extend(item.values())
        else:
            total += 1
    return total


def _bounded(value: Any, what: str) -> Any:
    if size(value) > MAX_TEMPLATE_OUTPUT:
        raise SecurityError(f"{what} would be larger than {MAX_TEMPLATE_OUTPUT >> 20} MiB")
    return value


def _check_number(number: Any, what: str) -> None:
    if isinstance(number, int) and abs(number) > MAX_TEMPLATE_OUTPUT:
        raise SecurityError(f"{what} {number} is too large for a template")


def _check_spec(spec: str, what: str) -> None:
    """The numbers in a format spec or %-format (widths, precisions) are bounded."""
    for digits in re.findall(r"\d+", spec):
        if len(digits) > 9 or int(digits) > MAX_TEMPLATE_OUTPUT:
            raise SecurityError(f"{what} {digits} is too large for a template")


def _check_str_format(text: str, args: Iterable[Any]) -> None:
    """str.format: no width or precision beyond the bound, also where a field takes it from an argument."""
    nested = False
    for _, _, spec, _ in string.Formatter().parse(text):
        if spec:
            _check_spec(spec, "a width or precision of")
            nested = nested or "{" in spec
    if nested:
        for arg in args:
            _check_number(arg, "a width or precision of")
            if isinstance(arg, str):
                _check_spec(arg, "a width or precision of")


CONTEXT_PARAMETERS = ("eval_ctx", "context", "environment", "env")
PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_printf(text: Any, args: Any) -> None:
    """`TEXT % ARGS` and |format: no width or precision beyond the bound, also one given as `*`."""
    if not isinstance(text, str | bytes):
        return
    spec = text if isinstance(text, str) else text.decode("latin-1")
    star = False
    for match in PRINTF_SPEC.finditer(spec):
        _check_spec("".join(part for part in match.groups() if part and part != "*"), "a width or precision of")
        star = star or "*" in match.groups()
    if star:
        for arg in args if isinstance(args, tuple) else (args,):
            _check_number(arg, "a width or precision of")


def _check_str_method(obj: str | bytes, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """The str (and bytes) methods whose result grows with an argument: bounded before they run."""
    limit = MAX_TEMPLATE_OUTPUT
    if name in ("center", "ljust", "rjust", "zfill") and args:
        _check_number(args[0], f"the width of {name}()")
    elif name == "expandtabs":
        tabsize = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(tabsize, int) and len(obj) * max(tabsize, 1) > limit:
            raise SecurityError(f"expandtabs() would make more than {limit >> 20} MiB")
    elif name == "replace" and len(args) >= 2:
        old, new = args[0], args[1]
        if isinstance(old, str | bytes) and isinstance(new, str | bytes):
            times = len(obj) + 1 if not old else len(obj) // len(old)
            if len(obj) + times * len(new) > limit:
                raise SecurityError(f"replace() would make more than {limit >> 20} MiB")
    elif name == "join" and args:
        parts = args[0]
        count = len(parts) if isinstance(parts, list | tuple) else 0
        if size(parts) + count * len(obj) > limit:
            raise SecurityError(f"join() would make more than {limit >> 20} MiB")
    elif name == "translate" and args and isinstance(args[0], dict):
        longest = max((len(v) for v in args[0].values() if isinstance(v, str | bytes)), default=1)
        if len(obj) * longest > limit:
            raise SecurityError(f"translate() would make more than {limit >> 20} MiB")


def _listed(value: Any) -> Any:
    """An iterable as a list (bounded), so that a filter's size can be known before it runs."""
    if isinstance(value, str | bytes | list | tuple | dict):
        return value
    items = []
    for item in value:
        items.append(item)
        if len(items) > MAX_TEMPLATE_OUTPUT:
            raise SecurityError(f"a sequence longer than {MAX_TEMPLATE_OUTPUT} items is too long for a template")
    return items


def _filter_checks(name: str, arguments: dict[str, Any]) -> None:
    """Bound jinja2's filters that take a size or a text to repeat, before they run; make lazy inputs lists."""
    limit = MAX_TEMPLATE_OUTPUT
    too_large = SecurityError(f"the filter {name} would make more than {limit >> 20} MiB")
    if name == "center":
        _check_number(arguments.get("width"), "the width of center")
    elif name == "indent":
        width, text = arguments.get("width", 4), str(arguments.get("s", ""))
        lines = text.count("\n") + 1
        if lines * (len(width) if isinstance(width, str) else width if isinstance(width, int) else 0) > limit:
            raise too_large
    elif name == "format":
        _check_printf(arguments.get("value"), tuple(arguments.get("args", ())))
    elif name == "replace":
        _check_str_method(str(arguments.get("s", "")), "replace", (arguments.get("old"), arguments.get("new")), {})
    elif name == "join":
        arguments["value"] = items = _listed(arguments["value"])
        if size(items) + len(items) * len(str(arguments.get("d", ""))) > limit:
            raise too_large
    elif name == "sum":
        arguments["iterable"] = items = _listed(arguments["iterable"])
        if size(items) + size(arguments.get("start", 0)) > limit:
            raise too_large
    elif name == "slice":
        slices = arguments.get("slices")
        _check_number(slices, "the number of slices")
        if isinstance(slices, int) and (slices > limit or slices * size(arguments.get("fill_with")) > limit):
            raise too_large
    elif name == "batch":
        count = arguments.get("linecount")
        if isinstance(count, int) and count * size(arguments.get("fill_with")) > limit:
            raise too_large
    elif name == "wordwrap":
        text, wrap = str(arguments.get("s", "")), arguments.get("wrapstring")
        if isinstance(wrap, str) and len(text) * (len(wrap) + 1) > limit:
            raise too_large


def _bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(function)
    # jinja2 passes a context first to a filter marked pass_context & co.; an async variant's signature (the
    # one inspect finds) may not name it.
    first = next(iter(signature.parameters), "")
    skip = int(getattr(function, "jinja_pass_arg", None) is not None and first not in CONTEXT_PARAMETERS)

    @functools.wraps(function)  # keeps jinja2's pass_context / pass_eval_ctx marks
    def bounded(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args[skip:], **kwargs)
        _filter_checks(name, bound.arguments)
        result = function(*args[:skip], *bound.args, **bound.kwargs)
        return _bounded(result, f"the result of the filter {name}")

    return bounded


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    if isinstance(n, int) and isinstance(max, int) and n * max > MAX_TEMPLATE_OUTPUT // 16:
        raise SecurityError(f"lipsum({n}, max={max}) would make too much text for a template")
    return str(jinja2.utils.generate_lorem_ipsum(n, html, min, max))


def _bounded_concat(parts: Iterable[Any]) -> str:
    """`~`, and the text of `{% set %}` blocks, macros and filter blocks: at most MAX_TEMPLATE_OUTPUT."""
    texts, total = [], 0
    for part in parts:
        text = part if isinstance(part, str) else str(part)
        total += len(text)
        if total > MAX_TEMPLATE_OUTPUT:
            raise SecurityError(f"a text larger than {MAX_TEMPLATE_OUTPUT >> 20} MiB is too large for a template")
        texts.append(text)
    return "".join(texts)


class _CodeGenerator(jinja2.compiler.CodeGenerator):
    """jinja2's code, with `~` joined by the environment's bounded concat, and each list, tuple and mapping a
    template writes measured."""

    def visit_Concat(self, node: jinja2.nodes.Concat, frame: jinja2.compiler.Frame) -> None:
        self.write("environment.concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def _measured(self, visit: Callable[[], None]) -> None:
        self.write("environment.measured(")
        visit()
        self.write(")")

    def visit_List(self, node: jinja2.nodes.List, frame: jinja2.compiler.Frame) -> None:
        self._measured(lambda: super(_CodeGenerator, self).visit_List(node, frame))

    def visit_Dict(self, node: jinja2.nodes.Dict, frame: jinja2.compiler.Frame) -> None:
        self._measured(lambda: super(_CodeGenerator, self).visit_Dict(node, frame))

    def visit_Tuple(self, node: jinja2.nodes.Tuple, frame: jinja2.compiler.Frame) -> None:
        if node.ctx == "store":  # a loop's or a set's targets: names, not a value
            super().visit_Tuple(node, frame)
        else:
            self._measured(lambda: super(_CodeGenerator, self).visit_Tuple(node, frame))


class _Sandbox(jinja2.sandbox.ImmutableSandboxedEnvironment):
    """jinja2's immutable sandbox (no `_` attributes, no changes to lists and dicts, no unsafe callables),
    which of a model shows only its keys and the helpers it lists in TEMPLATE_HELPERS, of a network a
    NetworkView, and bounds the values every operator, method, filter and literal makes."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _CodeGenerator
    concat = staticmethod(_bounded_concat)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}
        self.globals["lipsum"] = _lipsum

    @staticmethod
    def measured(value: Any) -> Any:
        return _bounded(value, "a list or mapping")

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, BaseModel):
            model = type(obj)
            if attr not in model.model_fields and attr not in getattr(model, "TEMPLATE_HELPERS", ()):
                return False
        return bool(super().is_safe_attribute(obj, attr, value))

    def getattr(self, obj: Any, attribute: str) -> Any:
        return _view(super().getattr(obj, attribute))

    def getitem(self, obj: Any, argument: Any) -> Any:
        return _view(super().getitem(obj, argument))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        text, is_map = value.__self__, value.__name__ == "format_map"

        def checked(*args: Any, **kwargs: Any) -> str:
            values = [*args, *kwargs.values()]
            if is_map and args and isinstance(args[0], Mapping):
                values = list(args[0].values())
            _check_str_format(text, values)
            return str(_bounded(wrapped(*args, **kwargs), "the formatted text"))

        return functools.update_wrapper(checked, value)

    def call(__self, __context: jinja2.runtime.Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str | bytes):
            _check_str_method(owner, getattr(__obj, "__name__", ""), args, kwargs)
        for arg in (*args, *kwargs.values()):
            _bounded(arg, "an argument")
        return _bounded(super().call(__context, __obj, *args, **kwargs), "the result of a call")

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and _too_large_power(left, right):
            raise SecurityError(f"{left} ** {right} is too large a number for a template")
        if operator == "*" and (_too_large_repeat(left, right) or _too_large_repeat(right, left)):
            raise SecurityError("a repeated text or list would be too large for a template")
        if operator == "+" and _is_sized(left) and _is_sized(right) and size(left) + size(right) > MAX_TEMPLATE_OUTPUT:
            raise SecurityError(f"a text or list larger than {MAX_TEMPLATE_OUTPUT >> 20} MiB is too large")
        if operator == "%":
            _check_printf(left, right)
            return _bounded(super().call_binop(context, operator, left, right), "the formatted text")
        return super().call_binop(context, operator, left, right)


def _view(value: Any) -> Any:
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return NetworkView.of(value)
    return value


def _is_sized(value: Any) -> bool:
    return isinstance(value, str | bytes | list | tuple)


def _too_large_power(base: Any, exponent: Any) -> bool:
    if not (isinstance(base, int) and isinstance(exponent, int)):
        return False
    return exponent > 0 and abs(base) > 1 and base.bit_length() * exponent > MAX_TEMPLATE_VALUE


def _too_large_repeat(sized: Any, times: Any) -> bool:
    if not (_is_sized(sized) and isinstance(times, int)):
        return False
    return len(sized) * times > MAX_TEMPLATE_VALUE or size(sized) * times > MAX_TEMPLATE_OUTPUT


class _Deadline:
    """Stops a template that runs too long: a trace function, set for the rendering thread only, that checks
    the time on every line the template's own code runs (its loops included)."""

    def __init__(self, files: set[str], seconds: float) -> None:
        self.files = files  # the code of these files is the template's (the loader's names)
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.end:
            raise SecurityError(f"it ran longer than {self.seconds:g} s, the most a template may take")

    def trace(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "call" and frame.f_code.co_filename in self.files:
            self.check()
            return self.trace_lines
        return None

    def trace_lines(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            self.check()
        return self.trace_lines


def _environment(loader: jinja2.BaseLoader) -> jinja2.Environment:
    return _Sandbox(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def _render(path: Path, loader: _Loader, context: Mapping[str, Any], seconds: float, output: int) -> str:
    """Render, counting the output as it comes and stopping at the deadline."""
    deadline = _Deadline(loader.loaded, seconds)
    previous = sys.gettrace()
    sys.settrace(deadline.trace)
    try:
        template = _environment(loader).get_template(path.name)
        parts, total = [], 0
        for part in template.generate(**context):
            total += len(part)
            if total > output:
                raise InputFileError(
                    f"{path}: template output is larger than {output >> 20} MiB, the most a template may write "
                    "(hint: a template makes a configuration file, not data)"
                )
            parts.append(part)
        return "".join(parts)
    finally:
        sys.settrace(previous)


def render_template(
    path: Path,
    context: Mapping[str, Any],
    root: Path | None = None,
    *,
    seconds: float = MAX_TEMPLATE_SECONDS,
    output: int = MAX_TEMPLATE_OUTPUT,
) -> str:
    """Render one template file in the sandbox; any failure is an InputFileError naming the template file
    and line. It includes files from its own directory, whose real paths must lie in `root` (default: that
    directory). It may take `seconds` and write `output` characters at most."""
    check_jinja2()
    loader = _Loader(path.parent, root if root is not None else path.parent)
    try:
        return _render(path, loader, context, seconds, output)
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
        if frame.f_code.co_filename in loader.loaded and line:  # 0: jinja2 knows no template line for it
            where = f"{frame.f_code.co_filename}:{line}"
    return where


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def render_tree(src: Path, dst: Path, context: Mapping[str, Any]) -> list[str]:
    """Lay the overlay src into dst (fsutil.install_tree(): never outside dst, symlinks copied as such, modes
    kept, no Python bytecode); files ending in .j2 are rendered and lose the suffix. Returns the relative paths
    written."""
    return install_tree(src, dst, lambda template: render_template(template, context, root=src), overlay=True)
