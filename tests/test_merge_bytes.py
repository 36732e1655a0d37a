"""merge_bytes: what is not text is refused with a reason; line endings and BOMs merge sensibly."""

from __future__ import annotations

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


def test_a_side_that_only_converted_to_crlf_keeps_crlf_in_the_result() -> None:
    base = b"a\nb\nc\nd\n"
    ours = b"a\r\nb\r\nc\r\nd\r\n"
    theirs = b"a\nb\nc\nD\n"
    result = merge_bytes(base, ours, theirs, "x.txt")
    assert result.clean
    assert result.to_bytes() == b"a\r\nb\r\nc\r\nD\r\n"


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
