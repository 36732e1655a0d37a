"""The resolution view in Markdown: for each conflicted file, each region gwi decided (its
strategy, explanation, checks and text) and each region left to a person, within a budget of
characters. Shown in the living comment and the check-run, so an approver sees what gwi
decided, not only a hash; the run page shows the same beside git's conflict, and the whole patch.
"""

from __future__ import annotations

import re

from bot.schemas.resolve import (
    FileResolution,
    FileStatus,
    RegionResolution,
    ResolveResult,
    ResolverKind,
)

#: A region's resolved text is shown in full up to this many characters.
MAX_REGION_TEXT = 3_000


def fenced(text: str, lang: str = "") -> list[str]:
    """``text`` in a code fence longer than any run of backticks inside it, so nothing in it can
    end the block early (and nothing in it is changed)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    # A fenced block's content is its lines, each with its line break: one final break is the
    # one the closing fence's line adds back.
    return [fence + lang, text.removesuffix("\n"), fence]


def _checks(region: RegionResolution) -> str:
    return ", ".join(c.value.replace("_", " ") for c in region.checks) or "none recorded"


def _conflict(region: RegionResolution) -> str:
    """The region as git left it, in diff3 form."""
    def side(text: str) -> str:
        return text if not text or text.endswith("\n") else text + "\n"
    return (f"<<<<<<< ours (the pull request)\n{side(region.ours)}||||||| base\n"
            f"{side(region.base)}=======\n{side(region.theirs)}>>>>>>> theirs (the base branch)\n")


def _region_lines(region: RegionResolution) -> list[str]:
    number = region.index + 1
    conflict = _conflict(region)
    text = region.resolution
    if region.resolver is ResolverKind.NONE:
        lines = [f"- region {number}: **left to you**: {region.explanation}"]
    else:
        who = (f"proposed by the LLM `{region.model}`" if region.resolver is ResolverKind.LLM
               else f"`{region.strategy or 'rule'}`")
        lines = [(f"- region {number}: {who} (confidence {region.confidence}%):"
                  f" {region.explanation} Checks passed: {_checks(region)}.")]
    size = len(conflict) + len(text or "")
    if size > MAX_REGION_TEXT or region.cut:
        lines.append(f"  (region {number} is too long to show here: {size:,} characters; the run"
                     " page shows it whole)")
        return lines
    if region.surfaced:
        summary = f"region {number}: a span git merged without a conflict, shown by gwi"
        block = ["", "its three sides:", "", *fenced(conflict)]
    else:
        summary = f"region {number} as git left it" + (
            ", and as gwi resolved it" if text is not None else "")
        block = ["", "git left:", "", *fenced(conflict)]
    if text is not None:
        block += ["", "gwi's resolution:" if text else "gwi's resolution: the region's lines"
                  " removed", "", *(fenced(text) if text else [])]
    return [*lines, f"  <details><summary>{summary}</summary>", *block, "", "  </details>"]


def _file_lines(f: FileResolution) -> list[str]:
    strategies = ", ".join(f"`{s}`" for s in f.strategies)
    head = f"**`{f.path}`**: {f.status.value.replace('_', ' ')}"
    head += f" ({f.regions_resolved}/{f.regions} region(s)"
    head += f"; {strategies})" if strategies else ")"
    details = f.region_details
    said = details and all(r.explanation == f.explanation for r in details)
    lines = [head + ("." if said else f": {f.explanation}")]
    if details is None:
        return [*lines, "- (this run's bundle does not record its regions one by one)"]
    for region in details:
        lines += _region_lines(region)
    return lines


def resolution_view(resolve: ResolveResult, budget: int) -> tuple[list[str], bool]:
    """The view's lines and whether all of it fitted in ``budget`` characters (whole files only:
    what does not fit is named, never cut mid-file)."""
    conflicted = [f for f in resolve.files if f.status is not FileStatus.MERGED_CLEANLY]
    lines = ["**What gwi decided** (each conflict region git left):"]
    used = len(lines[0])
    for number, f in enumerate(conflicted):
        block = ["", *_file_lines(f)]
        size = sum(len(line) + 1 for line in block)
        if used + size > budget:
            rest = len(conflicted) - number
            lines += ["", f"({rest} more conflicted file(s) do not fit here.)"]
            return lines, False
        lines += block
        used += size
    clean = len(resolve.files) - len(conflicted)
    if clean:
        lines += ["", f"{clean} other file(s) merged cleanly (git's merge, no conflict)."]
    return lines, True
