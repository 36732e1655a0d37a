"""Checks a merged file must pass to be called resolved: parses, keeps added lines, no markers."""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Callable, Sequence
from functools import cache
from itertools import chain
from typing import Any, cast

from bot.merge.diff import diff
from bot.merge.lines import has_marker_line, split_lines

_JS = (".js", ".mjs", ".cjs", ".jsx")
_TS = (".ts", ".mts", ".cts")
_TSX = (".tsx",)


def language(path: str) -> str | None:
    """The language we can check for a repo-relative path, by its extension."""
    name = path.lower().rsplit("/", 1)[-1]
    if name.endswith((".py", ".pyi")):
        return "python"
    if name.endswith(_JS):
        return "javascript"
    if name.endswith(_TS):
        return "typescript"
    if name.endswith(_TSX):
        return "tsx"
    if name.endswith(".json"):
        return "json"
    if name.endswith(".toml"):
        return "toml"
    if name.endswith((".yaml", ".yml")):
        return "yaml"
    return None


def parses(path: str, text: str) -> bool | None:
    """Whether ``text`` parses as the language of ``path``; None when we do not check it."""
    lang = language(path)
    if lang is None:
        return None
    return _PARSERS[lang](text)


def _python(text: str) -> bool:
    return python_tree(text) is not None


def python_tree(text: str) -> ast.Module | None:
    """The module's syntax tree, or None when it does not parse (as Python 3)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def imported_names(tree: ast.Module) -> set[str]:
    """Names bound by import statements of a module, outside functions and classes.

    Only statement bodies are searched (module level and inside if/try/with blocks), which
    is where imports live and far cheaper than walking every expression.
    """
    names: set[str] = set()
    todo: list[ast.stmt] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            names.update(alias.asname or alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.If | ast.Try | ast.With | ast.For | ast.While):
            todo.extend(node.body)
            todo.extend(node.orelse if not isinstance(node, ast.With) else [])
            if isinstance(node, ast.Try):
                todo.extend(node.finalbody)
                for handler in node.handlers:
                    todo.extend(handler.body)
    return names


def _reads_and_bindings(tree: ast.Module) -> tuple[set[str], set[str]]:
    """Names a module reads, and names it binds anywhere (import, def, class, store, argument).

    A plain stack walk over the nodes' fields: three times quicker than ast.walk, whose
    generators dominate on big modules.
    """
    read: set[str] = set()
    bound: set[str] = set()
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind is ast.Name:
            name = cast(ast.Name, node)
            (read if type(name.ctx) is ast.Load else bound).add(name.id)
            continue
        if kind is ast.FunctionDef or kind is ast.AsyncFunctionDef or kind is ast.ClassDef:
            bound.add(cast(ast.FunctionDef, node).name)
        elif kind is ast.arg:
            bound.add(cast(ast.arg, node).arg)
        elif kind is ast.Import or kind is ast.ImportFrom:
            for alias in cast(ast.Import, node).names:
                bound.add(alias.asname or alias.name.split(".")[0])
        for value in node.__dict__.values():
            if type(value) is list:
                stack.extend(item for item in value if isinstance(item, ast.AST))
            elif isinstance(value, ast.AST):
                stack.append(value)
    return read, bound


_IMPORT_LINE = re.compile(
    r"^[ \t]*(?:from[ \t]+[.\w]+[ \t]+import[ \t]+(\([^)]*\)|[^\n]*)|import[ \t]+([^\n]*))",
    re.MULTILINE,
)
_COMMENT = re.compile(r"#[^\n]*")


def imported_names_in(text: str) -> set[str]:
    """Names that import statements anywhere in a Python text bind, found without parsing.

    A line scan: it also sees imports inside functions (and import-like lines in strings),
    which only makes the dangling-import check more careful.
    """
    names: set[str] = set()
    for match in _IMPORT_LINE.finditer(text):
        items, plain = match.group(1), match.group(2)
        listed = _COMMENT.sub("", (items if plain is None else plain).split(";")[0])
        for item in listed.strip().strip("()").split(","):
            words = item.split()
            if not words:
                continue
            name = words[-1] if len(words) == 3 and words[1] == "as" else words[0]
            if plain is not None and len(words) != 3:
                name = name.split(".")[0]
            if name.isidentifier():
                names.add(name)
    return names


def dangling_imports(
    ours: str, theirs: str, merged: ast.Module, merged_text: str | None = None
) -> set[str]:
    """Names a side imported that the merge no longer binds, yet the merged code still reads.

    Dropping an import the other side's code still uses breaks the module at run time,
    which no parser notices. Any binding counts (import, def, class, assignment, argument).
    The sides' imports are read from their texts (see :func:`imported_names_in`), so only
    the merged module is parsed.
    """
    dropped = (imported_names_in(ours) | imported_names_in(theirs)) - imported_names(merged)
    if not dropped:
        return set()
    if merged_text is not None:
        words = set(re.findall(r"\w+", merged_text))
        dropped &= words  # a name that no longer appears at all is certainly not read
        if not dropped:
            return set()
    read, bound = _reads_and_bindings(merged)
    return dropped & read - bound


@cache
def _tree_sitter(lang: str) -> Any:
    import tree_sitter

    if lang == "javascript":
        import tree_sitter_javascript as grammar

        return tree_sitter.Parser(tree_sitter.Language(grammar.language()))
    import tree_sitter_typescript as ts_grammar

    capsule = ts_grammar.language_tsx() if lang == "tsx" else ts_grammar.language_typescript()
    return tree_sitter.Parser(tree_sitter.Language(capsule))


def syntax_tree(lang: str, text: str) -> Any:
    """The tree-sitter tree of JavaScript, TypeScript or TSX text."""
    return _tree_sitter(lang).parse(text.encode("utf-8", "surrogatepass"))


def _tree_sitter_ok(lang: str) -> Callable[[str], bool]:
    def check(text: str) -> bool:
        return not syntax_tree(lang, text).root_node.has_error

    return check


def _json(text: str) -> bool:
    import json

    try:
        json.loads(text.removeprefix("\ufeff"))
    except ValueError:
        return False
    return True


def _toml(text: str) -> bool:
    import tomllib

    try:
        tomllib.loads(text.removeprefix("\ufeff"))
    except (tomllib.TOMLDecodeError, ValueError):
        return False
    return True


def _yaml(text: str) -> bool:
    import yaml

    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        # Composing checks the syntax, anchors and aliases without building objects, so
        # application-specific tags (``!Ref``) are no reason to fail.
        for _ in yaml.compose_all(text, Loader=loader):
            pass
    except yaml.YAMLError:
        return False
    return True


_PARSERS: dict[str, Callable[[str], bool]] = {
    "python": _python,
    "javascript": _tree_sitter_ok("javascript"),
    "typescript": _tree_sitter_ok("typescript"),
    "tsx": _tree_sitter_ok("tsx"),
    "json": _json,
    "toml": _toml,
    "yaml": _yaml,
}


def has_conflict_markers(text: str) -> bool:
    """Whether a line starts with ``<<<<<<<``, ``|||||||`` or ``>>>>>>>`` as git writes them.

    A lone ``=======`` is not counted: it is an ordinary heading underline in
    reStructuredText and Markdown.
    """
    return has_marker_line(text)


def lost_added_lines(base: str, ours: str, theirs: str, merged: str) -> list[str]:
    """Lines a side added that ``merged`` dropped, except where the other side changed that spot.

    A side's added lines are those of its diff from the base. They are exempt when the other
    side changed an overlapping span of the base (or inserted inside the span, or changed
    around the place of an insertion): there the two edits compete and a resolution may
    rightly keep only one. Every other added line, including lines both sides inserted at
    the same place, must still be in ``merged``, matched by a line diff from that side.
    """
    return lost_lines(*(split_lines(x) for x in (base, ours, theirs, merged)))


def lost_lines(
    base: Sequence[str], ours: Sequence[str], theirs: Sequence[str], merged: Sequence[str]
) -> list[str]:
    """:func:`lost_added_lines` on texts already split into lines."""
    table = {line: i for i, line in enumerate(dict.fromkeys(chain(base, ours, theirs, merged)))}
    bi, oi, ti, mi = ([table[x] for x in lines] for lines in (base, ours, theirs, merged))
    lost: list[str] = []
    for side, side_lines, other in ((oi, ours, ti), (ti, theirs, oi)):
        other_hunks = diff(bi, other)
        dropped = bytearray(len(side) + 1)
        for a_start, a_end, _, _ in diff(side, mi):
            dropped[a_start:a_end] = b"\x01" * (a_end - a_start)
        for start, end, s_start, s_end in diff(bi, side):
            if s_start == s_end or _contested(start, end, other_hunks):
                continue
            lost.extend(side_lines[i] for i in range(s_start, s_end) if dropped[i])
    return lost


def _contested(start: int, end: int, hunks: list[tuple[int, int, int, int]]) -> bool:
    """Whether one of ``hunks`` competes with a change of the base span [start, end).

    Spans compete when they share a base line, or when one is an insertion strictly inside
    the other's span. Edits that merely touch, and two insertions at one place, do not.
    """
    for h_start, h_end, _, _ in hunks:
        if h_start < end and start < h_end:
            return True
        if start == end and h_start < start < h_end:
            return True
        if h_start == h_end and start < h_start < end:
            return True
    return False
