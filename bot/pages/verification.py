"""The run page's "verified right now": the bundle checked at the moment the page is rendered
(through `bot.runs.verify`, the same check `gwi runs verify` makes), and an externally recorded
anchor matched against the log."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.runs.verify import verify_bundle
from bot.schemas.audit import AuditEvent


@dataclass(frozen=True)
class Verification:
    verdict: str  # `bot.runs.verify.Verdict`: "ok", "failed" or "unsigned"
    problems: tuple[str, ...]
    events: int
    signature_valid: bool  # the last seal is signed and every signature holds
    signed_by: tuple[str, ...]  # every key that signed (seals, the end, the approval)
    key_trusted: bool  # every one of them is a key the page trusts

    @property
    def verified(self) -> bool:
        """All a person needs: intact, signed, by a trusted key, matching the anchor."""
        return self.verdict == "ok"


def verify_now(folder: Path, trusted_keys: frozenset[str],
               anchor: tuple[int, str] | None) -> Verification:
    """Check the bundle in ``folder`` now, as `gwi runs verify` does, against the keys the
    server trusts (its key and the retired ones) and the anchor recorded outside the bundle."""
    report = verify_bundle(folder, trusted_keys=trusted_keys, anchor=anchor)
    return Verification(
        verdict=report.verdict.value,
        problems=tuple(report.problems),
        events=report.events,
        signature_valid=report.last_seal_signed,
        signed_by=tuple(report.signed_by),
        key_trusted=report.key_trusted is True,
    )


@dataclass(frozen=True)
class AnchorCheck:
    status: str  # "matched", "not matched" or "none recorded"
    detail: str


def check_anchor(events: tuple[AuditEvent, ...], anchor: tuple[int, str] | None) -> AnchorCheck:
    """Whether the log holds the event an anchor recorded elsewhere (its seq and hash)."""
    if anchor is None:
        return AnchorCheck("none recorded", "no anchor of this log was recorded outside it")
    seq, digest = anchor
    found = next((e for e in events if e.seq == seq), None)
    if found is None:
        return AnchorCheck("not matched", f"the log has no event {seq}: it was cut short or"
                           " replaced")
    if found.hash != digest:
        return AnchorCheck("not matched", f"event {seq} has hash {found.hash}, the anchor"
                           f" recorded {digest}: the log was rewritten")
    return AnchorCheck("matched", f"event {seq} has the recorded hash {digest}")
