"""Line-level two-way diff that finds the hunks git's xdiff (Myers) finds."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from itertools import compress, repeat

# A hunk: a[a_start:a_end] was replaced by b[b_start:b_end] (either side may be empty).
Hunk = tuple[int, int, int, int]

# git's xdiff gives up on a minimal script after this many edit steps in one split and
# takes the furthest-reaching path instead; doing the same keeps large diffs fast and
# keeps our hunks equal to git's on big rewrites.
_MIN_MAX_COST = 256
# Lines occurring this often on the other side ("common" lines such as blank lines) are
# left out of the search when they sit among unmatched lines, as xdiff does.
_MAX_EQ_LIMIT = 1024
_SIMSCAN_WINDOW = 100
_KEEP_RUN = 4
_FLIP = bytes([1, 0]) + bytes(254)


def _rough_sqrt(n: int) -> int:
    """The power of two near sqrt(n) that xdiff uses for its limits."""
    root = 1
    while n > 0:
        root <<= 1
        n >>= 2
    return root


def _common_prefix(a: Sequence[Hashable], b: Sequence[Hashable], limit: int) -> int:
    """Length of the common prefix, compared in blocks (slice equality runs at C speed)."""
    n = 0
    step = 64
    while step:
        while n + step <= limit and a[n : n + step] == b[n : n + step]:
            n += step
        step //= 4
    return n


def _common_suffix(a: Sequence[Hashable], b: Sequence[Hashable], limit: int) -> int:
    """Length of the common suffix (at most ``limit``), compared in blocks from the end."""
    n, m = len(a), len(b)
    k = 0
    step = 64
    while step:
        while k + step <= limit and a[n - k - step : n - k] == b[m - k - step : m - k]:
            k += step
        step //= 4
    return k


def diff(
    a: Sequence[Hashable], b: Sequence[Hashable], a_counts: Counter[Hashable] | None = None
) -> list[Hunk]:
    """Hunks turning ``a`` into ``b`` (lines or any equal-comparable items).

    ``a_counts`` may pass ``Counter(a)`` when the caller diffs ``a`` against several files.
    """
    n, m = len(a), len(b)
    top = min(n, m)
    lo = _common_prefix(a, b, top)
    tail = _common_suffix(a, b, top - lo)
    end_a, end_b = n - tail, m - tail
    changed_a = bytearray(n + 1)
    changed_b = bytearray(m + 1)
    if lo < end_a or lo < end_b:
        _diff_middle(a, b, lo, end_a, end_b, changed_a, changed_b, a_counts)
        _compact(a, changed_a, changed_b)
        _compact(b, changed_b, changed_a)
    return _hunks(changed_a, n, changed_b, m)


def _classify(
    own: Sequence[Hashable], other_counts: Counter[Hashable], lo: int, end: int, size: int
) -> bytearray:
    """For each line in lo..end, 1 when it takes part in the search (else it is changed)."""
    limit = min(_rough_sqrt(size), _MAX_EQ_LIMIT)
    counts = list(map(other_counts.get, own[lo:end], repeat(0)))
    keep = bytearray(map(bool, counts))
    if not counts or max(counts) < limit:
        return keep
    # kind: 0 no match on the other side, 1 some matches, 2 very many matches. Only the
    # very common lines need a closer look, and they are usually few.
    common = list(compress(range(len(counts)), map(limit.__le__, counts)))
    kind = bytearray(keep)
    for j in common:
        kind[j] = 2
    last = len(kind) - 1
    for j in common:
        keep[j] = (
            j == 0 or j == last or kind[j - 1] == 1 or kind[j + 1] == 1 or not _drop_common(kind, j)
        )
    return keep


def _drop_common(kind: bytearray, j: int) -> bool:
    """Whether a very common line sits among unmatched lines and should be left out."""
    start = max(0, j - _SIMSCAN_WINDOW)
    stop = min(len(kind) - 1, j + _SIMSCAN_WINDOW)
    lone_before, common_before = 0, 1
    r = j - 1
    while r >= start:
        if kind[r] == 0:
            lone_before += 1
        elif kind[r] == 2:
            common_before += 1
        else:
            break
        r -= 1
    if lone_before == 0:
        return False
    lone_after, common_after = 0, 1
    r = j + 1
    while r <= stop:
        if kind[r] == 0:
            lone_after += 1
        elif kind[r] == 2:
            common_after += 1
        else:
            break
        r += 1
    if lone_after == 0:
        return False
    lone = lone_before + lone_after
    common = common_before + common_after
    return common * _KEEP_RUN < common + lone


def _diff_middle(
    a: Sequence[Hashable],
    b: Sequence[Hashable],
    lo: int,
    end_a: int,
    end_b: int,
    changed_a: bytearray,
    changed_b: bytearray,
    a_counts: Counter[Hashable] | None,
) -> None:
    """Mark the changed lines between the common prefix and suffix."""
    keep_a = _classify(a, Counter(b), lo, end_a, len(a))
    keep_b = _classify(b, a_counts if a_counts is not None else Counter(a), lo, end_b, len(b))
    changed_a[lo:end_a] = keep_a.translate(_FLIP)
    changed_b[lo:end_b] = keep_b.translate(_FLIP)
    index_a = list(compress(range(lo, end_a), keep_a))
    index_b = list(compress(range(lo, end_b), keep_b))
    ch_a = bytearray(len(index_a))
    ch_b = bytearray(len(index_b))
    _myers(list(compress(a[lo:end_a], keep_a)), list(compress(b[lo:end_b], keep_b)), ch_a, ch_b)
    for ch, index, changed in ((ch_a, index_a, changed_a), (ch_b, index_b, changed_b)):
        at = ch.find(1)
        while at >= 0:
            changed[index[at]] = 1
            at = ch.find(1, at + 1)


class _Unequal:
    """Equal to nothing but itself (padding for the snake loops)."""

    __slots__ = ()


def _myers(ha: list[Hashable], hb: list[Hashable], ch_a: bytearray, ch_b: bytearray) -> None:
    """Divide-and-conquer Myers search on the middle snake, marking unmatched items."""
    n, m = len(ha), len(hb)
    # Diagonal d (from -m - 1 to n + 1) is stored at index d: Python's negative indexes put
    # the negative diagonals at the end of the list, clear of the positive ones.
    forward = [0] * (n + m + 3)
    backward = [0] * (n + m + 3)
    # Items equal to nothing pad both sequences, so that a snake compares items first and
    # checks its bounds only on a match. A step looks past the box by at most one item a
    # round (and below index 0, which Python reads from the end), and there are at most
    # n + m + 1 rounds.
    pad = n + m + 2
    ha = ha + [_Unequal()] * pad
    hb = hb + [_Unequal()] * pad
    max_cost = max(_MIN_MAX_COST, _rough_sqrt(n + m + 3))
    work = [(0, n, 0, m, False)]
    while work:
        off1, lim1, off2, lim2, need_min = work.pop()
        while off1 < lim1 and off2 < lim2 and ha[off1] == hb[off2]:
            off1 += 1
            off2 += 1
        while off1 < lim1 and off2 < lim2 and ha[lim1 - 1] == hb[lim2 - 1]:
            lim1 -= 1
            lim2 -= 1
        if off1 == lim1:
            ch_b[off2:lim2] = b"\x01" * (lim2 - off2)
        elif off2 == lim2:
            ch_a[off1:lim1] = b"\x01" * (lim1 - off1)
        else:
            s1, s2, min_lo, min_hi = _split(
                ha, off1, lim1, hb, off2, lim2, forward, backward, need_min, max_cost
            )
            work.append((s1, lim1, s2, lim2, min_hi))
            work.append((off1, s1, off2, s2, min_lo))


def _split(
    ha: list[Hashable],
    off1: int,
    lim1: int,
    hb: list[Hashable],
    off2: int,
    lim2: int,
    fw: list[int],
    bw: list[int],
    need_min: bool,
    max_cost: int,
) -> tuple[int, int, bool, bool]:
    """Find where an optimal (or, past the cost limit, a good) edit path crosses the middle.

    The paths can only meet in the forward step when the two middles differ by an odd
    number, only in the backward step otherwise; each step has a loop without the test.
    """
    dmin, dmax = off1 - lim2, lim1 - off2
    fmid, bmid = off1 - off2, lim1 - lim2
    odd = (fmid - bmid) & 1
    fmin = fmax = fmid
    bmin = bmax = bmid
    fw[fmid] = off1
    bw[bmid] = lim1
    cost = 0
    while True:
        cost += 1
        if fmin > dmin:
            fmin -= 1
            fw[fmin - 1] = -1
        else:
            fmin += 1
        if fmax < dmax:
            fmax += 1
            fw[fmax + 1] = -1
        else:
            fmax -= 1
        # Diagonals go down by two, so one step's left neighbour is the next one's right.
        right = fw[fmax + 1]
        if odd:
            for d in range(fmax, fmin - 1, -2):
                left = fw[d - 1]
                i1 = left + 1 if left >= right else right
                right = left
                i2 = i1 - d
                while ha[i1] == hb[i2] and i1 < lim1 and i2 < lim2:
                    i1 += 1
                    i2 += 1
                fw[d] = i1
                if bmin <= d <= bmax and bw[d] <= i1:
                    return i1, i2, True, True
        else:
            for d in range(fmax, fmin - 1, -2):
                left = fw[d - 1]
                i1 = left + 1 if left >= right else right
                right = left
                i2 = i1 - d
                while ha[i1] == hb[i2] and i1 < lim1 and i2 < lim2:
                    i1 += 1
                    i2 += 1
                fw[d] = i1
        if bmin > dmin:
            bmin -= 1
            bw[bmin - 1] = 1 << 62
        else:
            bmin += 1
        if bmax < dmax:
            bmax += 1
            bw[bmax + 1] = 1 << 62
        else:
            bmax -= 1
        right = bw[bmax + 1]
        if odd:
            for d in range(bmax, bmin - 1, -2):
                left = bw[d - 1]
                i1 = left if left < right else right - 1
                right = left
                i2 = i1 - d
                while ha[i1 - 1] == hb[i2 - 1] and i1 > off1 and i2 > off2:
                    i1 -= 1
                    i2 -= 1
                bw[d] = i1
        else:
            for d in range(bmax, bmin - 1, -2):
                left = bw[d - 1]
                i1 = left if left < right else right - 1
                right = left
                i2 = i1 - d
                while ha[i1 - 1] == hb[i2 - 1] and i1 > off1 and i2 > off2:
                    i1 -= 1
                    i2 -= 1
                bw[d] = i1
                if fmin <= d <= fmax and i1 <= fw[d]:
                    return i1, i2, True, True
        if need_min or cost < max_cost:
            continue
        # Too costly: split at the furthest-reaching point found in either direction.
        fbest, fbest1 = -1, -1
        for d in range(fmax, fmin - 1, -2):
            i1 = min(fw[d], lim1)
            i2 = i1 - d
            if lim2 < i2:
                i1, i2 = lim2 + d, lim2
            if fbest < i1 + i2:
                fbest, fbest1 = i1 + i2, i1
        bbest, bbest1 = 1 << 62, 1 << 62
        for d in range(bmax, bmin - 1, -2):
            i1 = max(off1, bw[d])
            i2 = i1 - d
            if i2 < off2:
                i1, i2 = off2 + d, off2
            if i1 + i2 < bbest:
                bbest, bbest1 = i1 + i2, i1
        if (lim1 + lim2) - bbest < fbest - (off1 + off2):
            return fbest1, fbest - fbest1, True, False
        return bbest1, bbest - bbest1, False, True


def _compact(recs: Sequence[Hashable], changed: bytearray, other: bytearray) -> None:
    """Slide each run of changed lines down as far as it goes, or to meet the other side's.

    Equal lines around a change make its position ambiguous ("a b a" with one "a"
    inserted); git settles it this way, and so must we to find the regions git finds.
    Group k of a file (its k-th run of changed lines, possibly empty) faces group k of
    the other file: both lie just after the k-th unchanged line.
    """
    n = len(recs)
    n_other = len(other) - 1
    # The k of every group of the other file that is not empty (a few runs, found by
    # bytearray.find): whether a group faces a change is all the sliding asks.
    facing: set[int] = set()
    ones = 0
    run = other.find(1, 0, n_other)
    while run >= 0:
        run_end = other.find(0, run, n_other)
        if run_end < 0:
            run_end = n_other
        facing.add(run - ones)
        ones += run_end - run
        run = other.find(1, run_end, n_other)

    start = changed.find(1)
    while 0 <= start < n:
        k = start - changed.count(1, 0, start)
        end = start
        while end < n and changed[end]:
            end += 1
        while True:
            size = end - start
            matching_other = -1
            while start > 0 and recs[start - 1] == recs[end - 1]:
                start -= 1
                end -= 1
                changed[start] = 1
                changed[end] = 0
                k -= 1
                while start > 0 and changed[start - 1]:
                    start -= 1
            earliest_end = end
            if k in facing:
                matching_other = end
            while end < n and recs[start] == recs[end]:
                changed[start] = 0
                changed[end] = 1
                start += 1
                end += 1
                k += 1
                while end < n and changed[end]:
                    end += 1
                if k in facing:
                    matching_other = end
            if size == end - start:
                break
        if end != earliest_end and matching_other != -1:
            while k not in facing:
                start -= 1
                end -= 1
                changed[start] = 1
                changed[end] = 0
                k -= 1
                while start > 0 and changed[start - 1]:
                    start -= 1
        start = changed.find(1, end + 1) if end < n else -1


def _hunks(changed_a: bytearray, n: int, changed_b: bytearray, m: int) -> list[Hunk]:
    hunks: list[Hunk] = []
    i = j = 0
    while True:
        # Jump over the unchanged stretch: equally long on both sides.
        next_a = changed_a.find(1, i)
        next_b = changed_b.find(1, j)
        step_a = (n if next_a < 0 or next_a > n else next_a) - i
        step_b = (m if next_b < 0 or next_b > m else next_b) - j
        step = min(step_a, step_b)
        i += step
        j += step
        if i >= n and j >= m:
            return hunks
        si, sj = i, j
        while i < n and changed_a[i]:
            i += 1
        while j < m and changed_b[j]:
            j += 1
        hunks.append((si, i, sj, j))


# git's xdiff histogram diff (xhistogram.c), the diff `git merge` (merge-ort) uses by
# default: the regions of a merge are those of this diff, not of Myers'.
_MAX_CHAIN = 64


def diff_histogram(a: Sequence[Hashable], b: Sequence[Hashable]) -> list[Hunk]:
    """Hunks turning ``a`` into ``b`` as git's histogram diff finds them.

    As in xdiff: no common prefix or suffix is set aside first; a region whose common
    lines all occur more than 64 times falls back to Myers on that region; the result's
    changed runs are slid as for any xdiff algorithm.
    """
    n, m = len(a), len(b)
    changed_a = bytearray(n + 1)
    changed_b = bytearray(m + 1)
    _histogram(a, b, changed_a, changed_b, 1, n, 1, m)
    _compact(a, changed_a, changed_b)
    _compact(b, changed_b, changed_a)
    return _hunks(changed_a, n, changed_b, m)


def _histogram(
    a: Sequence[Hashable], b: Sequence[Hashable], changed_a: bytearray, changed_b: bytearray,
    line1: int, count1: int, line2: int, count2: int,
) -> None:
    """xhistogram.c's histogram_diff on 1-based line1..line1+count1-1 of a (and of b)."""
    while True:
        if count1 <= 0 and count2 <= 0:
            return
        if not count1:
            changed_b[line2 - 1 : line2 - 1 + count2] = b"\1" * count2
            return
        if not count2:
            changed_a[line1 - 1 : line1 - 1 + count1] = b"\1" * count1
            return
        lcs = _find_lcs(a, b, line1, count1, line2, count2)
        if lcs is None:
            _fall_back(a, b, changed_a, changed_b, line1, count1, line2, count2)
            return
        begin1, end1, begin2, end2 = lcs
        if begin1 == 0 and begin2 == 0:
            changed_a[line1 - 1 : line1 - 1 + count1] = b"\1" * count1
            changed_b[line2 - 1 : line2 - 1 + count2] = b"\1" * count2
            return
        _histogram(a, b, changed_a, changed_b, line1, begin1 - line1, line2, begin2 - line2)
        last1, last2 = line1 + count1 - 1, line2 + count2 - 1
        count1, line1 = last1 - end1, end1 + 1
        count2, line2 = last2 - end2, end2 + 1


def _find_lcs(
    a: Sequence[Hashable], b: Sequence[Hashable], line1: int, count1: int, line2: int,
    count2: int,
) -> tuple[int, int, int, int] | None:
    """The longest common run of the rarest lines (begin1, end1, begin2, end2, inclusive,
    1-based; all 0 when nothing is common), or None to fall back to Myers."""
    last1, last2 = line1 + count1 - 1, line2 + count2 - 1
    # scanA: for each distinct line, its first occurrence and count; next occurrence links.
    records: dict[Hashable, list[int]] = {}
    next_ptr: dict[int, int] = {}
    count_at: dict[int, list[int]] = {}
    for ptr in range(last1, line1 - 1, -1):
        key = a[ptr - 1]
        rec = records.get(key)
        if rec is not None:
            next_ptr[ptr] = rec[0]
            rec[0] = ptr
            rec[1] += 1
        else:
            rec = records[key] = [ptr, 1]
            next_ptr[ptr] = 0
        count_at[ptr] = rec
    cnt = _MAX_CHAIN + 1
    has_common = False
    begin1 = end1 = begin2 = end2 = 0
    b_ptr = line2
    while b_ptr <= last2:
        b_next = b_ptr + 1
        rec = records.get(b[b_ptr - 1])
        if rec is not None:
            has_common = True
            if rec[1] <= cnt:
                as_ = rec[0]
                while True:
                    np = next_ptr[as_]
                    bs = b_ptr
                    ae = as_
                    be = bs
                    rc = rec[1]
                    while line1 < as_ and line2 < bs and a[as_ - 2] == b[bs - 2]:
                        as_ -= 1
                        bs -= 1
                        if rc > 1:
                            rc = min(rc, count_at[as_][1])
                    while ae < last1 and be < last2 and a[ae] == b[be]:
                        ae += 1
                        be += 1
                        if rc > 1:
                            rc = min(rc, count_at[ae][1])
                    if b_next <= be:
                        b_next = be + 1
                    if end1 - begin1 < ae - as_ or rc < cnt:
                        begin1, end1, begin2, end2 = as_, ae, bs, be
                        cnt = rc
                    if np == 0:
                        break
                    while np and np <= ae:
                        np = next_ptr[np]
                    if np == 0:
                        break
                    as_ = np
        b_ptr = b_next
    if has_common and cnt > _MAX_CHAIN:
        return None
    return begin1, end1, begin2, end2


def _fall_back(
    a: Sequence[Hashable], b: Sequence[Hashable], changed_a: bytearray, changed_b: bytearray,
    line1: int, count1: int, line2: int, count2: int,
) -> None:
    """xdl_fall_back_diff: Myers (with its pre-pass) on the two ranges as files of their own."""
    sub_a = a[line1 - 1 : line1 - 1 + count1]
    sub_b = b[line2 - 1 : line2 - 1 + count2]
    top = min(count1, count2)
    lo = _common_prefix(sub_a, sub_b, top)
    tail = _common_suffix(sub_a, sub_b, top - lo)
    ch_a = bytearray(count1 + 1)
    ch_b = bytearray(count2 + 1)
    if lo < count1 - tail or lo < count2 - tail:
        _diff_middle(sub_a, sub_b, lo, count1 - tail, count2 - tail, ch_a, ch_b, None)
    changed_a[line1 - 1 : line1 - 1 + count1] = ch_a[:count1]
    changed_b[line2 - 1 : line2 - 1 + count2] = ch_b[:count2]
