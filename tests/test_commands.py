"""Slash-command parsing: only the author's own `/gwi` lines count, never quoted or code ones."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.github.slash_commands import (
    MAX_COMMENT_CHARS,
    Command,
    CommandKind,
    CommandOutcome,
    parse_command_line,
    parse_comment,
)

HASH = "0123456789abcdef" * 4
APPROVE = f"/gwi approve sha256:{HASH}"


def kinds(body: str) -> list[CommandKind]:
    return [command.kind for command in parse_comment(body).commands]


# -- the commands ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("/gwi run", CommandKind.RUN),
        ("/gwi abort", CommandKind.ABORT),
        ("/gwi status", CommandKind.STATUS),
        ("/gwi help", CommandKind.HELP),
        ("/GWI Run", CommandKind.RUN),
        ("/gwi\trun", CommandKind.RUN),
        ("/gwi run   ", CommandKind.RUN),
        ("/gwi run\t", CommandKind.RUN),
    ],
)
def test_each_command_is_recognised(line: str, kind: CommandKind) -> None:
    parsed = parse_comment(line)
    assert parsed.outcome is CommandOutcome.ONE
    assert parsed.command == Command(kind, 1, line.strip(), kind.value)


def test_an_approval_carries_its_hash() -> None:
    command = parse_comment(APPROVE).command
    assert command is not None
    assert command.kind is CommandKind.APPROVE
    assert command.patch_hash == f"sha256:{HASH}"
    assert command.reason is None


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ("", "needs the patch hash"),
        (HASH, "must start with `sha256:`"),
        (f"SHA256:{HASH}", "must start with `sha256:`"),
        (f"sha256:{HASH[:-1]}", "64 hex digits, not 63"),
        (f"sha256:{HASH}0", "64 hex digits, not 65"),
        ("sha256:", "64 hex digits, not 0"),
        (f"sha256:{HASH.upper()}", "lowercase hex"),
        (f"sha256:{HASH[:-1]}g", "only hex digits"),
        (f"sha256:{HASH[:-1]}\u0661", "only hex digits"),  # Arabic-Indic digit one
        (f"sha256:{HASH[:-1]}\uff10", "only hex digits"),  # fullwidth zero
        (f"sha256:{HASH[:-1]}\u200b", "only hex digits"),  # zero-width space, 64 chars
        (f"sha256:{HASH} please", "exactly one argument"),
        (f"sha256:{HASH} sha256:{HASH}", "exactly one argument"),
        (f"`sha256:{HASH}`", "must start with `sha256:`"),
    ],
)
def test_a_malformed_approval_says_why(arguments: str, reason: str) -> None:
    command = parse_comment(f"/gwi approve {arguments}").command
    assert command is not None
    assert command.kind is CommandKind.MALFORMED and command.word == "approve"
    assert command.patch_hash is None
    assert command.reason is not None and reason in command.reason


@pytest.mark.parametrize("word", ["run", "abort", "status", "help"])
def test_commands_without_arguments_refuse_them(word: str) -> None:
    command = parse_comment(f"/gwi {word} now please").command
    assert command is not None and command.kind is CommandKind.MALFORMED
    assert command.reason == f"`/gwi {word}` takes no arguments"


@pytest.mark.parametrize(("line", "word"), [("/gwi merge", "merge"), ("/gwi", ""), ("/gwi   ", "")])
def test_an_unknown_command_parses_as_unknown(line: str, word: str) -> None:
    command = parse_comment(line).command
    assert command is not None and command.kind is CommandKind.UNKNOWN and command.word == word


def test_a_line_that_is_not_a_command_cannot_be_parsed_as_one() -> None:
    with pytest.raises(ValueError):
        parse_command_line("say /gwi run")


# -- where a command may stand ----------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "please /gwi run",
        "/gwirun",
        "/gwi-run",
        "//gwi run",
        "\\/gwi run",
        "- /gwi run",
        "* /gwi run",
        "1. /gwi run",
        "`/gwi run`",
        "**/gwi run**",
        "\u200b/gwi run",  # zero-width space before it
        "\ufeff/gwi run",  # byte-order mark
        "\u00a0/gwi run",  # no-break space is not indentation
        "/gwi\u00a0run",  # nor a separator
        "    /gwi run",  # four spaces: indented code
        "\t/gwi run",  # a tab is four columns: indented code
        "gwi run",
        "/ gwi run",
    ],
)
def test_a_command_must_start_its_line(body: str) -> None:
    assert parse_comment(body).outcome is CommandOutcome.NONE


@pytest.mark.parametrize("indent", ["", " ", "  ", "   "])
def test_up_to_three_leading_spaces_are_allowed(indent: str) -> None:
    assert kinds(f"{indent}/gwi run") == [CommandKind.RUN]


def test_a_command_among_other_lines_counts_and_knows_its_line() -> None:
    parsed = parse_comment("Looks good to me.\n\n/gwi run\n\nThanks!")
    assert parsed.command is not None and parsed.command.line == 3


def test_a_command_in_a_paragraph_still_stands_on_its_own_line() -> None:
    assert kinds("I checked it.\n/gwi run\nThanks!") == [CommandKind.RUN]


@pytest.mark.parametrize("newline", ["\r\n", "\r", "\n"])
def test_every_kind_of_line_ending(newline: str) -> None:
    body = newline.join(["hello", APPROVE, "bye"]) + newline
    parsed = parse_comment(body)
    assert parsed.command is not None and parsed.command.kind is CommandKind.APPROVE
    assert parsed.command.line == 2


def test_unicode_around_a_command_is_fine() -> None:
    assert kinds("Ça marche 👍\n/gwi status\n— 謝謝") == [CommandKind.STATUS]


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\x0b", "\x0c"])
def test_only_cr_and_lf_end_lines(separator: str) -> None:
    assert kinds(f"text{separator}/gwi run") == []


# -- quotes, code and comments ------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        f"> {APPROVE}",
        f">{APPROVE}",
        f"   > {APPROVE}",
        f"> > {APPROVE}",
        f"> Earlier someone wrote:\n>\n> {APPROVE}\n\nI disagree.",
    ],
)
def test_quoted_commands_do_not_count(body: str) -> None:
    assert parse_comment(body).outcome is CommandOutcome.NONE


def test_a_quoted_approval_with_a_fresh_command_counts_only_the_fresh_one() -> None:
    body = f"> {APPROVE}\n\n/gwi status"
    assert kinds(body) == [CommandKind.STATUS]


@pytest.mark.parametrize(
    "body",
    [
        f"```\n{APPROVE}\n```",
        f"```bash\n{APPROVE}\n```",
        f"~~~\n{APPROVE}\n~~~",
        f"~~~~ text\n{APPROVE}\n~~~~",
        f"````\n```\n{APPROVE}\n```\n````",  # a shorter fence does not close a longer one
        f"```\n{APPROVE}\n~~~\n/gwi run\n```",  # nor a fence of the other character
        f"```\n{APPROVE}",  # an unclosed fence runs to the end
        f"   ```\n{APPROVE}\n   ```",
        f"Text\n```\n{APPROVE}\n```",  # a fence may interrupt a paragraph
    ],
)
def test_commands_in_fenced_code_do_not_count(body: str) -> None:
    assert parse_comment(body).outcome is CommandOutcome.NONE


def test_a_command_after_a_closed_fence_counts() -> None:
    assert kinds(f"```\n{APPROVE}\n```\n/gwi run") == [CommandKind.RUN]
    assert kinds(f"~~~\n/gwi run\n~~~~~\n{APPROVE}") == [CommandKind.APPROVE]


def test_a_fence_closer_must_be_bare() -> None:
    assert kinds("```\n/gwi run\n``` not a closer\n/gwi status\n```") == []


def test_backticks_in_a_backtick_info_string_make_no_fence() -> None:
    # "``` a ` b" is not a fence opener (CommonMark), so the next line is prose.
    assert kinds("``` a ` b\n/gwi run") == [CommandKind.RUN]


def test_indented_code_does_not_count() -> None:
    assert kinds(f"Run this:\n\n    {APPROVE}\n") == []


@pytest.mark.parametrize(
    "body",
    [
        "Type `\n/gwi run\n` to start.",
        "Type ``x\n/gwi run\n`` to start.",
        "A ` stray tick, then ``\nline\n/gwi run\n`` closed.",
    ],
)
def test_commands_inside_multi_line_inline_code_do_not_count(body: str) -> None:
    assert kinds(body) == []


@pytest.mark.parametrize(
    "body",
    [
        "A stray ` tick\n/gwi run",  # an unmatched run is literal
        "`` two then one `\n/gwi run",  # runs of different lengths do not pair
        "`code` then\n/gwi run",  # the span closed on its own line
        "Type `\n\n/gwi run\n`",  # a blank line ends the paragraph, and the span with it
    ],
)
def test_a_command_after_inline_code_still_counts(body: str) -> None:
    assert kinds(body) == [CommandKind.RUN]


@pytest.mark.parametrize(
    "body",
    [
        f"<!--\n{APPROVE}\n-->",
        f"text <!-- hidden\n{APPROVE}\nstill hidden -->",
    ],
)
def test_commands_hidden_in_html_comments_do_not_count(body: str) -> None:
    assert kinds(body) == []


def test_a_command_after_an_html_comment_counts() -> None:
    assert kinds("<!-- marker -->\n/gwi run") == [CommandKind.RUN]
    assert kinds("<!--\nhidden\n-->\n/gwi status") == [CommandKind.STATUS]


# -- several commands ---------------------------------------------------------------------------


def test_two_commands_are_a_distinct_outcome() -> None:
    parsed = parse_comment(f"/gwi run\n{APPROVE}")
    assert parsed.outcome is CommandOutcome.MULTIPLE
    assert parsed.command is None
    assert [c.line for c in parsed.commands] == [1, 2]


def test_the_same_command_twice_is_still_multiple() -> None:
    assert parse_comment(f"{APPROVE}\n{APPROVE}").outcome is CommandOutcome.MULTIPLE


def test_no_command_at_all() -> None:
    parsed = parse_comment("LGTM, thanks!")
    assert parsed.outcome is CommandOutcome.NONE and parsed.command is None and not parsed.truncated
    assert parse_comment("").outcome is CommandOutcome.NONE


# -- size ------------------------------------------------------------------------------------------


def test_an_enormous_comment_is_cut_at_the_cap_and_parsed_fast() -> None:
    body = "/gwi run\n" + ("`` ` ``` <!-- x\n> /gwi abort\n```\n" * 2_000_000)
    started = time.perf_counter()
    parsed = parse_comment(body)
    assert time.perf_counter() - started < 0.5
    assert parsed.truncated and parsed.command is not None
    assert parsed.command.kind is CommandKind.RUN


def test_nothing_past_the_cap_is_read() -> None:
    body = "x" * MAX_COMMENT_CHARS + "\n/gwi run"
    assert parse_comment(body).outcome is CommandOutcome.NONE


@pytest.mark.parametrize(
    "body",
    [
        "/gwi " + " " * (MAX_COMMENT_CHARS - 10) + "x",
        "/gwi approve " + "\t " * (MAX_COMMENT_CHARS // 2 - 10) + "x",
        "`" * MAX_COMMENT_CHARS,
        "\n".join("`" * n for n in range(1, 360)),
        ("a`" * (MAX_COMMENT_CHARS // 4)) + "\n/gwi run",
        "\n" * MAX_COMMENT_CHARS,
        "<!--" * (MAX_COMMENT_CHARS // 4),
    ],
)
def test_pathological_comments_stay_linear(body: str) -> None:
    started = time.perf_counter()
    parse_comment(body)
    # Linear takes ~0.01 s; the quadratic paths this guards against take seconds. The bound
    # leaves room for a machine busy with other work.
    assert time.perf_counter() - started < 1.0


# -- properties ------------------------------------------------------------------------------------


lines = st.sampled_from(
    ["/gwi run", APPROVE, "/gwi x", "> /gwi run", "```", "~~~", "`", "text", "", "    /gwi run"]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(lines, max_size=12), st.sampled_from(["\n", "\r\n"]))
def test_every_command_found_is_a_line_of_the_comment_starting_with_gwi(
    parts: list[str], newline: str
) -> None:
    body = newline.join(parts)
    for command in parse_comment(body).commands:
        assert parts[command.line - 1].strip() == command.text
        assert command.text.lower().startswith("/gwi")


@settings(max_examples=150, deadline=None)
@given(st.lists(lines, max_size=12))
def test_quoting_a_whole_comment_neutralises_it(parts: list[str]) -> None:
    quoted = "\n".join(f"> {part}" for part in parts)
    assert parse_comment(quoted).outcome is CommandOutcome.NONE


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.sampled_from("/gwi run>`~ \n\r<!-\t"), max_size=200))
def test_any_text_parses_without_error(body: str) -> None:
    parsed = parse_comment(body)
    assert parsed.outcome in set(CommandOutcome)


@pytest.mark.parametrize(
    "body",
    [
        f"> quoting the bot\n/gwi approve sha256:{HASH}",  # lazy continuation: still the quote
        f"> a\n> b\n/gwi approve sha256:{HASH}\n",
        f"<pre>\n/gwi approve sha256:{HASH}\n</pre>",
        f"<blockquote>\n/gwi approve sha256:{HASH}\n</blockquote>",
        f"<details><summary>old</summary>\n/gwi approve sha256:{HASH}\n</details>",
        f"- a list item\n/gwi approve sha256:{HASH}",  # lazy continuation of the list item
    ],
)
def test_what_github_renders_as_a_quote_code_or_html_is_no_command(body: str) -> None:
    """Issue 17, item 4: each of these approved and pushed when lines were read one by one."""
    assert parse_comment(body).commands == ()


@pytest.mark.parametrize("body", [f"/gwi approve sha256:{HASH}",
                                  f"LGTM, thanks!\n\n/gwi approve sha256:{HASH}\n",
                                  f"> quoted\n\n/gwi approve sha256:{HASH}"])
def test_a_command_in_a_paragraph_of_its_own_still_counts(body: str) -> None:
    assert parse_comment(body).outcome is CommandOutcome.ONE
