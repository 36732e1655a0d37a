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
    ok: bool  # the chain is intact, every artifact matches it, and any signature holds
    problems: tuple[str, ...]
    events: int
    signed_by: str | None  # the key that signed the finished log (None: not signed yet)
    key_trusted: bool  # signed_by is one of the keys the page trusts

    @property
    def verified(self) -> bool:
        """All a person needs: intact, and, once signed, signed by a trusted key."""
        return self.ok and (self.signed_by is None or self.key_trusted)


def verify_now(folder: Path, trusted_keys: frozenset[str], signed_by: str | None) -> Verification:
    """Check the bundle in ``folder`` now, against the trusted key that signed it if any.

    ``signed_by`` is the key the log's last line names; when it is not trusted the check runs
    against a trusted key, so the report says whose signature it is and that it is not trusted.
    """
    key = signed_by if signed_by in trusted_keys else min(trusted_keys, default=None)
    report = verify_bundle(folder, trusted_key=key)
    return Verification(
        ok=report.ok,
        problems=tuple(report.problems),
        events=report.events,
        signed_by=report.signed_by,
        key_trusted=report.signed_by is not None and report.signed_by in trusted_keys,
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
