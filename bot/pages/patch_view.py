"""The whole `patch.diff` for the run page: split per file, highlighted by Pygments, every byte
shown (bytes that are not UTF-8 are decoded with U+FFFD replacement characters)."""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import DiffLexer

from bot.schemas.common import format_patch_hash, sha256_hex

#: The CSS class every highlighted block carries; the stylesheet scopes Pygments' rules to it.
CSS_CLASS = "diff"
_FORMATTER = HtmlFormatter(cssclass=CSS_CLASS, nowrap=False)
_LEXER = DiffLexer(stripnl=False, ensurenl=False)
_FILE_START = b"diff --git "
STYLESHEET_NOTE = ("Pygments' rules for the patch, scoped to .diff: written by"
                   " bot.pages.patch_view.stylesheet(), and a test keeps this file equal to it.")


@dataclass(frozen=True)
class PatchFile:
    """One file's part of the patch."""

    path: str
    html: Markup  # Pygments' output: every character of the patch escaped
    added: int
    removed: int
    binary: bool
    size: int


@dataclass(frozen=True)
class PatchView:
    sha256: str  # ``sha256:<hex>`` of the exact bytes, as people copy it into /gwi approve
    size: int
    header: str  # the lines before the first file (gwi's run, head and base)
    files: tuple[PatchFile, ...]


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _path_of(first_line: str) -> str:
    """The file a ``diff --git a/X b/Y`` section is about, as git names it (quoted when git
    quotes it)."""
    rest = first_line[len("diff --git "):].rstrip("\n")
    if rest.startswith('"'):
        return rest.split('" ', 1)[-1] if '" ' in rest else rest
    cut = rest.rfind(" b/")
    return rest[cut + 3:] if cut >= 0 else rest


def _sections(patch: bytes) -> tuple[bytes, list[bytes]]:
    """The bytes before the first file, and each file's bytes (every byte in exactly one)."""
    starts = []
    if patch.startswith(_FILE_START):
        starts.append(0)
    at = patch.find(b"\n" + _FILE_START)
    while at >= 0:
        starts.append(at + 1)
        at = patch.find(b"\n" + _FILE_START, at + 1)
    if not starts:
        return patch, []
    ends = [*starts[1:], len(patch)]
    return patch[: starts[0]], [patch[a:b] for a, b in zip(starts, ends, strict=True)]


def _counts(text: str) -> tuple[int, int]:
    added = removed = 0
    in_hunk = False
    for line in text.splitlines():
        if line.startswith("@@"):
            in_hunk = True
        elif not in_hunk:
            continue
        elif line.startswith("+"):
            added += 1
        elif line.startswith("-"):
            removed += 1
    return added, removed


def patch_view(patch: bytes) -> PatchView:
    """The patch split per file, each highlighted; nothing of it left out."""
    head, sections = _sections(patch)
    files = []
    for section in sections:
        text = _decode(section)
        added, removed = _counts(text)
        files.append(PatchFile(
            path=_path_of(text.split("\n", 1)[0]),
            # Markup: Pygments' HTML formatter escapes every character of the text it is given.
            html=Markup(highlight(text, _LEXER, _FORMATTER)),
            added=added, removed=removed,
            binary="\nGIT binary patch\n" in text or "\nBinary files " in text,
            size=len(section),
        ))
    return PatchView(sha256=format_patch_hash(sha256_hex(patch)), size=len(patch),
                     header=_decode(head), files=tuple(files))


def stylesheet() -> str:
    """Pygments' rules for the highlighted patch, scoped to ``.diff`` (bot/pages/static/)."""
    defs = _FORMATTER.get_style_defs  # untyped in types-Pygments
    rules = str(defs(f".{CSS_CLASS}"))  # type: ignore[no-untyped-call]
    return f"/* {STYLESHEET_NOTE} */\n{rules}\n"
