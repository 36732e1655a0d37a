"""Slash commands in comments (pure): `/gwi <command>` lines, outside quotes and code.

A command is a line of its own, as Prow's anchored ``(?m)^/lgtm\\s*$`` patterns require:
``/gwi`` at the start of the line (after at most three spaces: four make an indented code
block in Markdown), then the command word and its arguments. Lines that GitHub renders as
something other than the author's own words are never commands: quoted lines (``>``),
fenced code blocks (``` and ~~~), indented code, inline code spans running over several
lines, and HTML comments. Quoting a comment that holds an approval therefore never approves
anything. A CommonMark parser (markdown-it-py) has the last word: the command line must lie in
a top-level paragraph, so a lazy quote continuation, a list item, and HTML blocks such as
`<pre>`, `<blockquote>` or `<details>` never carry one.

Parsing is linear in the comment's length, which is capped at GitHub's own limit for a
comment body; what lies past the cap is not read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from markdown_it import MarkdownIt

# GitHub refuses comment bodies longer than this; nothing longer is a real comment.
MAX_COMMENT_CHARS = 65_536
PREFIX = "/gwi"

_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
_QUOTE = re.compile(r" {0,3}>")
# No lazy quantifier before an optional tail: the match stays linear however long the line.
_COMMAND = re.compile(r" {0,3}/gwi(?:[ \t]+(?P<rest>.*))?", re.IGNORECASE)
_BACKTICKS = re.compile(r"`+")
_ARGUMENT_SPLIT = re.compile(r"[ \t]+")
_HASH_PREFIX = "sha256:"
_HASH = re.compile(r"sha256:[0-9a-f]{64}", re.ASCII)


class CommandKind(StrEnum):
    RUN = "run"
    ABORT = "abort"
    STATUS = "status"
    HELP = "help"
    APPROVE = "approve"
    UNKNOWN = "unknown"  # `/gwi something-else`: the caller answers with help
    MALFORMED = "malformed"  # a known command with wrong arguments: ``reason`` says why


class CommandOutcome(StrEnum):
    NONE = "none"
    ONE = "one"
    MULTIPLE = "multiple"  # ambiguous: the caller acts on none of them (never approves)


_NO_ARGUMENTS = {
    "run": CommandKind.RUN,
    "abort": CommandKind.ABORT,
    "status": CommandKind.STATUS,
    "help": CommandKind.HELP,
}


@dataclass(frozen=True, slots=True)
class Command:
    """One command line. ``word`` is the command word as typed, lowercased ("" if none)."""

    kind: CommandKind
    line: int  # 1-based, in the comment
    text: str  # the line, without surrounding whitespace
    word: str
    patch_hash: str | None = None  # APPROVE only: "sha256:<64 lowercase hex>"
    reason: str | None = None  # MALFORMED only


@dataclass(frozen=True, slots=True)
class ParsedComment:
    commands: tuple[Command, ...]
    truncated: bool = False  # the comment was longer than MAX_COMMENT_CHARS

    @property
    def outcome(self) -> CommandOutcome:
        if not self.commands:
            return CommandOutcome.NONE
        return CommandOutcome.ONE if len(self.commands) == 1 else CommandOutcome.MULTIPLE

    @property
    def command(self) -> Command | None:
        """The command, when there is exactly one."""
        return self.commands[0] if len(self.commands) == 1 else None


def parse_comment(body: str) -> ParsedComment:
    """Every `/gwi` command line in a comment body, in order."""
    truncated = len(body) > MAX_COMMENT_CHARS
    text = body[:MAX_COMMENT_CHARS].replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    own = _top_level_paragraph_lines(text)
    commands = tuple(parse_command_line(lines[index], index + 1)
                     for index in _command_lines(lines) if index in own)
    return ParsedComment(commands, truncated)


# Block structure only: code spans are the line scanner's, and inline parsing, the costly part
# on a comment of many unmatched backticks, is not needed to tell paragraphs from quotes.
_MARKDOWN = MarkdownIt("commonmark").disable("inline")


def _top_level_paragraph_lines(text: str) -> frozenset[int]:
    """The lines GitHub renders as the author's own top-level paragraphs, by a CommonMark
    parser: not a quote (lazy continuation lines included), a list, code, or an HTML block
    such as `<pre>` or `<blockquote>`. A command must stand on one of them."""
    found: set[int] = set()
    for token in _MARKDOWN.parse(text):
        if token.type == "paragraph_open" and token.level == 0 and token.map is not None:
            found.update(range(token.map[0], token.map[1]))
    return frozenset(found)


def parse_command_line(line: str, number: int = 1) -> Command:
    """Read one line already known to start with ``/gwi`` (see :func:`parse_comment`)."""
    match = _COMMAND.fullmatch(line)
    if match is None:
        raise ValueError(f"not a /gwi command line: {line!r}")
    text = line.strip(" \t")
    rest = (match.group("rest") or "").strip(" \t")
    word, _, arguments = _ARGUMENT_SPLIT.sub(" ", rest).partition(" ")
    word = word.lower()
    if word in _NO_ARGUMENTS:
        if arguments:
            return _malformed(number, text, word, f"`/gwi {word}` takes no arguments")
        return Command(_NO_ARGUMENTS[word], number, text, word)
    if word == "approve":
        return _approve(number, text, arguments)
    return Command(CommandKind.UNKNOWN, number, text, word)


def _approve(number: int, text: str, arguments: str) -> Command:
    if _HASH.fullmatch(arguments):
        return Command(CommandKind.APPROVE, number, text, "approve", patch_hash=arguments)
    parts = _ARGUMENT_SPLIT.split(arguments) if arguments else []
    if not parts:
        reason = "approve needs the patch hash: `/gwi approve sha256:<64 hex digits>`"
    elif len(parts) > 1:
        reason = "approve takes exactly one argument, the patch hash"
    elif not parts[0].startswith(_HASH_PREFIX):
        reason = "the patch hash must start with `sha256:`"
    else:
        digits = parts[0][len(_HASH_PREFIX) :]
        if len(digits) != 64:
            reason = f"the patch hash must have 64 hex digits, not {len(digits)}"
        elif re.fullmatch(r"[0-9a-fA-F]{64}", digits, re.ASCII):
            reason = "the patch hash must be written in lowercase hex"
        else:
            reason = "the patch hash must contain only hex digits 0-9 and a-f"
    return _malformed(number, text, "approve", reason)


def _malformed(number: int, text: str, word: str, reason: str) -> Command:
    return Command(CommandKind.MALFORMED, number, text, word, reason=reason)


def _command_lines(lines: list[str]) -> list[int]:
    """Indexes of the lines that are commands: prose lines starting with ``/gwi``."""
    found: list[int] = []
    paragraph: list[int] = []  # consecutive prose lines, where inline code may run over lines
    fence: tuple[str, int] | None = None  # the open fence's character and length
    in_comment = False

    def close_paragraph() -> None:
        if paragraph:
            found.extend(_outside_code_spans(lines, paragraph))
            paragraph.clear()

    for index, line in enumerate(lines):
        if fence is not None:
            if _closes(line, fence):
                fence = None
            continue
        if in_comment:
            in_comment = "-->" not in line
            continue
        opened = _FENCE.fullmatch(line)
        if opened and not (opened.group(1)[0] == "`" and "`" in opened.group(2)):
            close_paragraph()
            fence = (opened.group(1)[0], len(opened.group(1)))
            continue
        if not line.strip() or _QUOTE.match(line):
            close_paragraph()
            continue
        paragraph.append(index)
        comment_at = line.find("<!--")
        if comment_at >= 0 and "-->" not in line[comment_at + 4 :]:
            close_paragraph()
            in_comment = True
    close_paragraph()
    return found


def _closes(line: str, fence: tuple[str, int]) -> bool:
    match = _FENCE.fullmatch(line)
    return (
        match is not None
        and match.group(1)[0] == fence[0]
        and len(match.group(1)) >= fence[1]
        and not match.group(2).strip()
    )


def _outside_code_spans(lines: list[str], paragraph: list[int]) -> list[int]:
    """The paragraph's command lines that do not begin inside an inline code span.

    A run of n backticks opens a span closed by the next run of exactly n backticks; a run
    with no such partner is literal. Each run's partner is found by one backward pass, so
    the whole paragraph is read in linear time.
    """
    starts: list[int] = []
    offset = 0
    for index in paragraph:
        starts.append(offset)
        offset += len(lines[index]) + 1
    text = "\n".join(lines[index] for index in paragraph)
    runs = [(m.start(), m.end()) for m in _BACKTICKS.finditer(text)]
    partner: list[int | None] = [None] * len(runs)
    next_of_length: dict[int, int] = {}
    for i in range(len(runs) - 1, -1, -1):
        length = runs[i][1] - runs[i][0]
        partner[i] = next_of_length.get(length)
        next_of_length[length] = i
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(runs):
        j = partner[i]
        if j is None:
            i += 1
            continue
        spans.append((runs[i][1], runs[j][0]))
        i = j + 1
    result: list[int] = []
    span = 0
    for index, start in zip(paragraph, starts, strict=True):
        while span < len(spans) and spans[span][1] < start:
            span += 1
        inside = span < len(spans) and spans[span][0] <= start <= spans[span][1]
        if not inside and _COMMAND.fullmatch(lines[index]):
            result.append(index)
    return result
