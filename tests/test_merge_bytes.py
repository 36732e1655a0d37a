"""merge_bytes: what is not text is refused with a reason; line endings and BOMs merge sensibly."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bot.merge import merge_bytes, merge_texts


def test_nul_bytes_are_refused_as_binary() -> None:
    result = merge_bytes(b"a\0", b"b\0", b"c\0", "x.bin")
    assert result.refused is not None and "binary" in result.refused
    assert not result.clean and result.regions == ()


def test_large_files_are_refused() -> None:
    result = merge_bytes(b"a\n" * 10, b"b\n" * 10, b"c\n" * 10, "x.txt", max_bytes=5)
    assert result.refused is not None and "larger" in result.refused


def test_undecodable_text_is_refused_and_kept_byte_for_byte() -> None:
    result = merge_bytes(b"a\xff\n", b"b\xff\n", b"c\xff\n", "x.txt")
    assert result.refused == "not UTF-8 text"
    assert b"b\xff\n" in result.to_bytes()


def test_a_side_that_converted_every_line_ending_is_git_merge_left_to_a_person(
    tmp_path: Path,
) -> None:
    # Merging apart from the conversion was right for 9 of 19 such files on the shared
    # set: which side's lines and which line endings to keep is a decision.
    base = b"a\nb\nc\nd\n"
    ours = b"a\r\nb\r\nc\r\nd\r\n"
    theirs = b"a\nb\nc\nD\n"
    result = merge_bytes(base, ours, theirs, "x.txt")
    assert not result.clean and result.refused is None
    assert result.regions and not any(r.resolved for r in result.regions)
    assert all("converted every line ending (LF to CRLF)" in r.explanation
               for r in result.regions)
    for name, data in (("base", base), ("ours", ours), ("theirs", theirs)):
        (tmp_path / name).write_bytes(data)
    git = subprocess.run(
        ["git", "merge-file", "-p", "--diff3", "-L", "ours", "-L", "base", "-L", "theirs",
         str(tmp_path / "ours"), str(tmp_path / "base"), str(tmp_path / "theirs")],
        capture_output=True, check=False,
    )
    assert git.returncode == 1 and result.to_bytes() == git.stdout


def test_both_sides_converting_line_endings_the_same_way_still_merges() -> None:
    base = b"a\nb\nc\nd\n"
    result = merge_bytes(base, b"A\r\nb\r\nc\r\nd\r\n", b"a\r\nb\r\nc\r\nD\r\n", "x.txt")
    assert result.clean and result.refused is None
    assert result.to_bytes() == b"A\r\nb\r\nc\r\nD\r\n"


def test_bom_added_by_one_side_is_kept() -> None:
    result = merge_bytes(b"a\nb\nc\n", b"\xef\xbb\xbfa\nb\nc\n", b"a\nb\nC\n", "x.txt")
    assert result.clean
    assert result.to_bytes() == b"\xef\xbb\xbfa\nb\nC\n"


def test_clean_merge_has_no_regions() -> None:
    result = merge_texts("a\nb\nc\n", "A\nb\nc\n", "a\nb\nC\n", "x.txt")
    assert result.clean and result.regions == () and result.text == "A\nb\nC\n"


def test_conflict_region_reports_spans_and_size() -> None:
    result = merge_texts("a\nb\nc\n", "a\nB\nc\n", "a\nbb\nbbb\nc\n", "x.txt")
    assert not result.clean
    (region,) = result.regions
    assert (region.base_start, region.base_end) == (1, 2)
    assert (region.ours_start, region.ours_end) == (1, 2)
    assert (region.theirs_start, region.theirs_end) == (1, 3)
    assert region.lines == 4 and not region.resolved
    assert region.strategy.value == "conflict"
