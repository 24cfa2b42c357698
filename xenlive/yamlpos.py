"""YAML files whose every value and key remembers where it came from.

`load_located()` reads one YAML file that holds a mapping into plain data (dicts, lists, scalars with the
safe loader's rules) plus a map from key path to source position. `validate_located()` (xenlive.validation)
checks that data against a strict pydantic model and turns each validation error into a `Problem` that
reads `file:line:column: key.path: what is wrong (hint: how to fix it)`.

YAML anchors, aliases and merge keys (`<<: *name`) work; a value reached through an alias is reported at
the place it was defined (the anchor). A file is read only if it is a regular file of bounded size, and
refused where it first holds more than MAX_VALUES keys and values (counting what aliases repeat), nests
deeper than MAX_DEPTH or writes an integer longer than MAX_NUMBER_TEXT: such a file would otherwise take
minutes, gigabytes or the parser's stack.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from xenlive.errors import Problem, RecipeError
from xenlive.inputs import UnusableFile, read_input_file

KeyPath = tuple[str | int, ...]

_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_INT_TAG = "tag:yaml.org,2002:int"

# Bounds on one YAML file; the shipped recipes hold under 100 values, nested at most 5 levels.
MAX_VALUES = 10_000  # keys and values, counting each time an alias repeats its anchor
MAX_DEPTH = 32  # levels of nested mappings and lists
MAX_NUMBER_TEXT = 32  # characters of an integer (int() of thousands of digits is refused or slow)


class Model(BaseModel):
    """Base of every recipe model: frozen, no unknown keys, no type coercion ("5" is not 5)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


@dataclass(frozen=True)
class Position:
    file: Path
    line: int  # 1-based
    column: int  # 1-based


@dataclass
class Located:
    """Plain data from a YAML file plus the source position of each value and each mapping key.

    `texts` holds the source text of each scalar value (`yes`, `4.17`) for messages; `problems` holds what
    was wrong in the file's structure but did not stop loading (duplicate keys, non-text keys, bad tags).
    """

    data: Any
    values: dict[KeyPath, Position]
    keys: dict[KeyPath, Position]
    texts: dict[KeyPath, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def position(self, path: KeyPath) -> Position:
        """Best position for a key path: the value, else the key, else the nearest parent."""
        for cut in range(len(path), -1, -1):
            prefix = path[:cut]
            if cut == len(path) and prefix in self.values:
                return self.values[prefix]
            if prefix in self.keys:
                return self.keys[prefix]
            if prefix in self.values:
                return self.values[prefix]
        return Position(next(iter(self.values.values())).file if self.values else Path("?"), 1, 1)

    def key_position(self, path: KeyPath) -> Position:
        """Position of the key itself (for "unknown key"), else the best position of the path."""
        return self.keys.get(path) or self.position(path)

    def problem(self, path: KeyPath, message: str, hint: str = "", *, at_key: bool = False) -> Problem:
        """A Problem located at `path` (its key with at_key, else its value)."""
        pos = self.key_position(path) if at_key else self.position(path)
        return Problem(pos.file, pos.line, pos.column, format_path(path), message, hint)

    def forget_below(self, *paths: KeyPath) -> None:
        """Drop positions strictly below any of `paths` (their values were replaced wholesale).

        One pass over the tables, whatever the number of paths: a merge replaces many values at once."""
        cut = set(paths)
        for table in (self.values, self.keys, self.texts):
            for stale in [p for p in table if any(p[:i] in cut for i in range(len(p)))]:
                del table[stale]


def format_path(path: KeyPath) -> str:
    """('guests', 1, 'memory') -> 'guests[1].memory'."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_located(path: Path) -> Located:
    """Parse one YAML file holding a mapping into plain data with positions.

    Raises RecipeError when the file cannot be used at all: unreadable, a YAML syntax error, empty, or
    not a mapping at the top level. Other structural problems are collected in `Located.problems`.
    """
    try:
        raw = read_input_file(path)
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise RecipeError([Problem(path, 1, 1, "", "file not found")]) from None
    except UnusableFile as exc:
        raise RecipeError([Problem(path, 1, 1, "", exc.reason, exc.hint)]) from None
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise RecipeError(
            [Problem(path, line, column, "", f"not UTF-8 text ({exc.reason})", "save it as UTF-8")]
        ) from None
    except OSError as exc:
        raise RecipeError([Problem(path, 1, 1, "", f"cannot read file: {exc.strerror}")]) from None
    try:
        node = yaml.compose(text, Loader=_BoundedLoader)
    except _TooMuch as exc:
        at = format_path(exc.at[:4]) + ("..." if len(exc.at) > 4 else "")
        line, column = exc.mark.line + 1, exc.mark.column + 1
        raise RecipeError([Problem(path, line, column, at, exc.message, exc.hint)]) from None
    except yaml.MarkedYAMLError as exc:
        raise RecipeError([_syntax_problem(path, exc)]) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow, e.g. a control character
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        message = f"YAML syntax error: character #x{exc.character:04x} is not allowed"
        raise RecipeError([Problem(path, line, column, "", message, "remove it")]) from None
    if node is None:
        raise RecipeError([Problem(path, 1, 1, "", "file is empty, expected a mapping of keys")])
    if not isinstance(node, yaml.MappingNode) or node.tag != _MAP_TAG:
        line, column = node.start_mark.line + 1, node.start_mark.column + 1
        got = "a list" if isinstance(node, yaml.SequenceNode) else "a single value"
        raise RecipeError(
            [
                Problem(
                    path,
                    line,
                    column,
                    "",
                    f"expected a mapping of keys at the top level, got {got}",
                    "write `key: value` lines, starting at column 1",
                )
            ]
        )
    walker = _Walker(path)
    walker.located.data = walker.walk(node, ())
    return walker.located


class _TooMuch(Exception):
    """The composer stopped where the file exceeds one of the bounds (MAX_VALUES, MAX_DEPTH, MAX_NUMBER_TEXT)."""

    def __init__(self, mark: yaml.Mark, at: KeyPath, message: str, hint: str) -> None:
        super().__init__(message)
        self.mark, self.at, self.message, self.hint = mark, at, message, hint


class _BoundedLoader(yaml.SafeLoader):
    """The safe loader, counting as it composes: the values (with what aliases repeat) and the depth.

    Aliases are cheap in the composed graph (they point to their anchor's node), but expand in the data:
    each node's expanded size is known when it is complete, so an alias adds its anchor's size at once.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.at: list[str | int] = []  # key path of the node being composed
        self.total = 0  # values so far, expanded
        self.sizes: dict[int, int] = {}  # id(node) -> its values, expanded
        self.open: list[int] = []  # expanded values so far of each node being composed

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        step: list[str | int] = []
        if isinstance(index, int):
            step = [index]
        elif isinstance(index, yaml.Node):  # the key node of a mapping value
            step = [str(index.value) if isinstance(index, yaml.ScalarNode) else "?"]
        self.at += step
        try:
            return self._compose_counted(parent, index)
        finally:
            del self.at[len(self.at) - len(step) :]

    def _compose_counted(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        mark: yaml.Mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
        if self.check_event(yaml.AliasEvent):
            node = super().compose_node(parent, index)
            size = self.sizes.get(id(node), 1)  # an anchor still being composed: the walker reports the loop
            self.total += size
            if self.total > MAX_VALUES:
                raise _TooMuch(
                    mark,
                    tuple(self.at),
                    f"aliases expand this file to more than {MAX_VALUES} keys and values",
                    "an alias repeats all that its anchor holds; a recipe needs far fewer: write the values out",
                )
        else:
            if len(self.open) >= MAX_DEPTH:
                message = f"nested more than {MAX_DEPTH} levels deep"
                raise _TooMuch(mark, tuple(self.at), message, "a recipe nests a few levels at most")
            self.open.append(0)
            try:
                node = super().compose_node(parent, index)
            finally:
                size = 1 + self.open.pop()
            assert node is not None
            self.sizes[id(node)] = size
            self.total += 1
            if self.total > MAX_VALUES:
                raise _TooMuch(
                    mark,
                    tuple(self.at),
                    f"the file holds more than {MAX_VALUES} keys and values",
                    "a recipe needs far fewer; is this the right file?",
                )
            if node.tag == _INT_TAG and len(node.value) > MAX_NUMBER_TEXT:
                digits = len(str(node.value).lstrip("+-"))
                raise _TooMuch(
                    mark,
                    tuple(self.at),
                    f"a number of {digits} digits is too large",
                    "numbers in a recipe are far shorter; quote it if it is meant as text",
                )
        if self.open:
            self.open[-1] += size
        return node


def _syntax_problem(path: Path, exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = exc.problem or "cannot parse"
    context = exc.context or ""
    if context.startswith("while") and exc.context_mark is not None and exc.context_mark.line + 1 != line:
        message = f"{problem} ({context} that starts at line {exc.context_mark.line + 1})"
    elif context and not context.startswith("while"):
        message = f"{context}, {problem}"
    else:
        message = problem
    hint = ""
    if "'\\t'" in problem:
        hint = "indent with spaces: YAML does not allow tabs here"
    elif problem == "mapping values are not allowed here":
        hint = "put a nested key on its own, indented line; quote a value that contains ': '"
    return Problem(path, line, column, "", f"YAML syntax error: {message}", hint)


class _Walker:
    """Turns a composed YAML node tree into plain data, filling in a Located as it goes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.located = Located(None, {}, {})
        self.constructor = yaml.constructor.SafeConstructor()
        self.active: set[int] = set()  # nodes being walked, to catch an alias inside its own anchor

    def pos(self, node: yaml.Node) -> Position:
        return Position(self.path, node.start_mark.line + 1, node.start_mark.column + 1)

    def problem(self, node: yaml.Node, at: KeyPath, message: str, hint: str = "") -> None:
        p = self.pos(node)
        self.located.problems.append(Problem(self.path, p.line, p.column, format_path(at), message, hint))

    def walk(self, node: yaml.Node, at: KeyPath) -> Any:
        self.located.values[at] = self.pos(node)
        if id(node) in self.active:
            self.problem(node, at, "an alias refers to a value that contains it", "YAML aliases cannot recurse")
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                if node.tag != _MAP_TAG:
                    self.problem(node, at, f"unsupported YAML tag {node.tag}", "remove the tag")
                return self.mapping(node, at)
            if isinstance(node, yaml.SequenceNode):
                if node.tag != _SEQ_TAG:
                    self.problem(node, at, f"unsupported YAML tag {node.tag}", "remove the tag")
                return [self.walk(item, (*at, i)) for i, item in enumerate(node.value)]
            return self.scalar(node, at)
        finally:
            self.active.discard(id(node))

    def mapping(self, node: yaml.MappingNode, at: KeyPath, taken: frozenset[str] = frozenset()) -> dict[str, Any]:
        """The keys of a mapping, except those `taken` by a mapping that merges this one.

        Keys written out override merged ones, wherever they stand, and of duplicate keys YAML keeps the
        last: a value that is overridden is never walked, so it leaves no positions or problems behind.
        """
        written: dict[str, tuple[yaml.Node, yaml.Node]] = {}  # the last of each key
        first: dict[str, Position] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.key(key_node, at)
            if key is None:
                continue
            if key in first:
                self.problem(
                    key_node,
                    (*at, key),
                    f"duplicate key (first at line {first[key].line})",
                    "remove one of them; YAML keeps only the last",
                )
            first.setdefault(key, self.pos(key_node))
            written[key] = (key_node, value_node)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                out.update(self.merge(value_node, at, frozenset(taken | written.keys() | out.keys())))
        self.located.values[at] = self.pos(node)
        for key, (key_node, value_node) in written.items():
            if key not in taken:
                self.located.keys[(*at, key)] = self.pos(key_node)
                out[key] = self.walk(value_node, (*at, key))
        return out

    def merge(self, value_node: yaml.Node, at: KeyPath, taken: frozenset[str]) -> dict[str, Any]:
        """`<<: *a` or `<<: [*a, *b]`: the keys not already `taken` (earlier sources win)."""
        out: dict[str, Any] = {}
        sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                self.problem(source, at, "`<<` can only merge mappings", "write `<<: *name` with an anchored mapping")
                continue
            if id(source) in self.active:
                self.problem(source, at, "an alias refers to a value that contains it", "YAML aliases cannot recurse")
                continue
            self.active.add(id(source))
            try:
                out.update(self.mapping(source, at, frozenset(taken | out.keys())))
            finally:
                self.active.discard(id(source))
        return out

    def key(self, node: yaml.Node, at: KeyPath) -> str | None:
        if not isinstance(node, yaml.ScalarNode):
            kind = "a list" if isinstance(node, yaml.SequenceNode) else "a mapping"
            self.problem(node, at, f"a key must be text, not {kind}")
            return None
        value = self.construct(node, at)
        if isinstance(value, str):
            return value
        self.problem(
            node,
            (*at, node.value),
            f"a key must be text, but YAML reads {node.value} as {kind_of(value)}",
            f'quote it: "{node.value}"',
        )
        return None

    def scalar(self, node: yaml.Node, at: KeyPath) -> Any:
        self.located.texts[at] = str(node.value)
        return self.construct(node, at)

    def construct(self, node: yaml.Node, at: KeyPath) -> Any:
        """A scalar's Python value by the safe loader's rules (ints, bools, null, ...)."""
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            self.problem(node, at, f"cannot read value: {problem}", "remove the tag or quote the value")
            return node.value


def kind_of(value: Any) -> str:
    """How YAML read a value, in words: 'a boolean', 'a number', 'empty (null)'..."""
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"
