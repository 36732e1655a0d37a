"""`gwi runs verify`: check a bundle offline, from its files alone, and name the first thing wrong.

What is checked, in order (docs/run-artifacts.md says it for people who write their own):
every file is a known artifact; every audit line is canonical JSON whose hash covers it and whose
``prev`` is the line before; the log starts with ``run_created`` and ends with the seal of
``run.json`` (then, for a finished run, a valid signature of that seal); every seal's signature
holds; each artifact matches the sha256 its last ``artifact_written`` event recorded and validates
against its schema; ``run.json`` agrees with the log; the patch hash in resolve/review/approval is
the sha256 of ``patch.diff``; an approval's signature holds.

Four answers are kept apart, because each vouches for something else: the chain is intact (no
line edited, inserted or removed, every artifact as recorded); the signatures are valid (the last
seal is signed, so nobody without the key wrote this state); the signing key is trusted (one of
the keys given: the local key and its retired ones, or ``--public-key``); and, when an anchor
recorded outside the bundle is given, the log still holds that line (so it was not cut back to
an earlier signed point). Only all four together are "OK".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from pydantic import ValidationError

from bot.runs.audit import ChainError, parse_chain
from bot.runs.bundle import (
    audit_signature_message,
    last_recorded_hashes,
    seal_signature_message,
)
from bot.runs.ids import ARTIFACT_NAMES, AUDIT_LOG, check_run_id
from bot.runs.signing import verify_signature
from bot.schemas import ARTIFACT_SCHEMAS
from bot.schemas.approval import ApprovalRecord
from bot.schemas.audit import AuditAction, AuditEvent
from bot.schemas.base import Schema
from bot.schemas.common import sha256_hex
from bot.schemas.run import RunContext
from bot.schemas.state import TERMINAL, RunState


class Verdict(StrEnum):
    OK = "ok"  # intact, signed, by a trusted key, and (when given) matching the anchor
    FAILED = "failed"  # something is wrong: see the problems
    UNSIGNED = "unsigned"  # intact as far as hashes go, but nothing vouches for who wrote it


#: `gwi runs verify`'s exit code for each verdict (2 is bad input, as for every command).
EXIT_CODES = {Verdict.OK: 0, Verdict.FAILED: 1, Verdict.UNSIGNED: 3}


@dataclass
class VerifyReport:
    run_id: str
    problems: list[str] = field(default_factory=list)
    events: int = 0
    state: str | None = None
    head: tuple[int, str] | None = None  # the last line's seq and hash: the anchor to record
    signed_by: list[str] = field(default_factory=list)  # every key that signed, in order
    last_seal_signed: bool = False
    key_trusted: bool | None = None  # None: no key was given to trust (not asked)
    anchor: tuple[int, str] | None = None
    anchor_matched: bool | None = None  # None: no anchor given

    @property
    def chain_intact(self) -> bool:
        return not self.problems

    @property
    def verdict(self) -> Verdict:
        if self.problems or self.key_trusted is False or self.anchor_matched is False:
            return Verdict.FAILED
        if not self.last_seal_signed:
            return Verdict.UNSIGNED
        return Verdict.OK

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.OK

    def explain(self) -> list[str]:
        """What can and cannot be vouched for, one line each, for people."""
        lines = [
            "chain: intact" if self.chain_intact else f"chain: BROKEN: {self.problems[0]}",
        ]
        if self.last_seal_signed:
            keys = ", ".join(dict.fromkeys(self.signed_by))
            lines.append(f"signature: valid (by {keys})")
        else:
            lines.append("signature: NONE: the last seal is not signed, so nothing shows who"
                         " wrote this state (an older gwi, or a bundle rebuilt without the key)")
        if self.key_trusted is None:
            lines.append("key: not checked (no trusted key given)")
        elif self.key_trusted:
            lines.append("key: trusted")
        else:
            lines.append("key: NOT TRUSTED: give the signer's public key with --public-key if"
                         " you trust it")
        if self.anchor is not None:
            where = f"{self.anchor[0]}:{self.anchor[1]}"
            lines.append(f"anchor {where}: matched" if self.anchor_matched else
                         f"anchor {where}: NOT MATCHED: the log was cut back or rewritten")
        return lines


def verify_bundle(folder: Path, *, trusted_keys: Iterable[str] | None = None,
                  anchor: tuple[int, str] | None = None) -> VerifyReport:
    """Check the run folder. ``trusted_keys`` (hex Ed25519) are the keys signatures may be from
    (None: trust is not asked, only validity); ``anchor`` a (seq, hash) recorded outside the
    bundle that its log must still hold."""
    report = _verify(folder, anchor)
    if trusted_keys is not None and report.signed_by:
        trusted = set(trusted_keys)
        report.key_trusted = all(key in trusted for key in report.signed_by)
    return report


def _verify(folder: Path, anchor: tuple[int, str] | None) -> VerifyReport:
    run_id = folder.name
    report = VerifyReport(run_id=run_id, anchor=anchor)
    problems = report.problems
    try:
        check_run_id(run_id)
    except Exception as exc:  # noqa: BLE001 - any reason is reported the same way
        problems.append(str(exc))
        return report
    if not folder.is_dir():
        problems.append(f"{folder} is not a run folder")
        return report
    for entry in sorted(p.name for p in folder.iterdir()):
        if entry not in ARTIFACT_NAMES:
            problems.append(f"unexpected file {entry!r} in the run folder")

    log = folder / AUDIT_LOG
    if not log.is_file():
        problems.append("audit.log is missing")
        return report
    raw = log.read_bytes()
    try:
        chain = parse_chain(raw, run_id)
    except ChainError as exc:
        problems.append(str(exc))
        return report
    events = list(chain.events)
    report.events = len(events)
    if chain.torn_tail:
        problems.append(
            f"audit.log line {len(events) + 1}: incomplete (the file was truncated mid-line)"
        )
    if not events:
        problems.append("audit.log has no events")
        return report
    report.head = (events[-1].seq, events[-1].hash)
    if anchor is not None:
        seq, digest = anchor
        report.anchor_matched = seq < len(events) and events[seq].hash == digest
    if events[0].action is not AuditAction.RUN_CREATED:
        problems.append("audit.log line 1: the log does not start with run_created")

    signature = events[-1] if events[-1].action is AuditAction.AUDIT_SIGNED else None
    body = events[:-1] if signature else events
    for event in body:
        if event.action is AuditAction.AUDIT_SIGNED:
            problems.append(f"audit.log line {event.seq + 1}: a signature before the end")
    seal = body[-1] if body else None
    if seal is None or not (
        seal.action is AuditAction.ARTIFACT_WRITTEN and seal.data.get("artifact") == "run.json"
    ):
        problems.append(
            f"audit.log line {len(body)}: the log does not end by sealing run.json (lines were"
            " cut off its end, or a step was interrupted: open the run with gwi to recover)"
        )
    problems += _check_seals(run_id, events, report)
    if signature is not None and seal is not None:
        problems += _check_signature(run_id, signature, seal)
        if str(signature.data.get("public_key")) not in report.signed_by:
            report.signed_by.append(str(signature.data.get("public_key")))

    recorded = last_recorded_hashes(events)
    for name in ARTIFACT_NAMES:
        path = folder / name
        if name == AUDIT_LOG:
            continue
        if name not in recorded:
            if path.exists():
                problems.append(f"{name}: not recorded in the audit log (added by hand?)")
            continue
        if not path.exists():
            problems.append(f"{name}: missing, but the audit log recorded writing it")
            continue
        data = path.read_bytes()
        if sha256_hex(data) != recorded[name]:
            problems.append(f"{name}: its sha256 differs from the one the audit log recorded")

    models = _load_models(folder, problems)
    ctx = models.get("run.json")
    if isinstance(ctx, RunContext):
        report.state = ctx.state.value
        problems += _check_context(ctx, run_id, body, seal, signature)
    problems += _check_cross(folder, run_id, models, report)
    return report


def _check_seals(run_id: str, events: list[AuditEvent], report: VerifyReport) -> list[str]:
    """Every signed seal's signature must hold; whether the last one is signed is recorded."""
    problems = []
    signed = False
    for event in events:
        if not (event.action is AuditAction.ARTIFACT_WRITTEN
                and event.data.get("artifact") == "run.json"):
            continue
        signed = "signature" in event.data
        if not signed:
            continue
        key = str(event.data.get("public_key", ""))
        message = seal_signature_message(run_id, event.seq, event.prev,
                                         str(event.data.get("sha256")))
        if not verify_signature(key, str(event.data["signature"]), message):
            problems.append(f"audit.log line {event.seq + 1}: the seal's signature is not valid")
        elif key not in report.signed_by:
            report.signed_by.append(key)
    report.last_seal_signed = signed and not problems
    return problems


def _check_signature(run_id: str, signature: AuditEvent, seal: AuditEvent) -> list[str]:
    line = signature.seq + 1
    data = signature.data
    if data.get("signed_seq") != seal.seq or data.get("signed_hash") != seal.hash:
        return [f"audit.log line {line}: the signature does not cover the line before it"]
    key = str(data.get("public_key", ""))
    message = audit_signature_message(run_id, seal.seq, seal.hash)
    if not verify_signature(key, str(data.get("signature", "")), message):
        return [f"audit.log line {line}: the Ed25519 signature is not valid"]
    return []


def _load_models(folder: Path, problems: list[str]) -> dict[str, Schema]:
    models: dict[str, Schema] = {}
    for name, schema in ARTIFACT_SCHEMAS.items():
        path = folder / name
        if not path.exists():
            continue
        try:
            models[name] = schema.model_validate_json(path.read_bytes())
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            problems.append(f"{name}: does not validate ({where}: {err['msg']})")
    return models


def _check_context(
    ctx: RunContext,
    run_id: str,
    body: list[AuditEvent],
    seal: AuditEvent | None,
    signature: AuditEvent | None,
) -> list[str]:
    problems = []
    if ctx.run_id != run_id:
        problems.append(f"run.json: run_id {ctx.run_id} is not the folder's {run_id}")
    transitions = [e for e in body if e.action is AuditAction.STATE_TRANSITION]
    logged = RunState(str(transitions[-1].data["to"])) if transitions else RunState.QUEUED
    if ctx.state is not logged:
        problems.append(
            f"run.json: state {ctx.state.value} is not the last transition's ({logged.value})"
        )
    if [h.state for h in ctx.history[1:]] != [RunState(str(e.data["to"])) for e in transitions]:
        problems.append("run.json: its history differs from the transitions in the audit log")
    if seal is not None and ctx.audit_seq != seal.seq - 1:
        problems.append(f"run.json: audit_seq {ctx.audit_seq} is not {seal.seq - 1}")
    if ctx.state in TERMINAL and signature is None:
        problems.append(
            f"audit.log: the run is {ctx.state.value} but the log is not signed (its last lines"
            " were removed)"
        )
    if ctx.state not in TERMINAL and signature is not None:
        problems.append("audit.log: signed, but run.json says the run is still going")
    return problems


def _check_cross(
    folder: Path, run_id: str, models: dict[str, Schema], report: VerifyReport
) -> list[str]:
    problems = []
    for name, model in models.items():
        if getattr(model, "run_id", run_id) != run_id:
            problems.append(f"{name}: belongs to run {getattr(model, 'run_id', '?')}")
    patch = folder / "patch.diff"
    patch_hash = sha256_hex(patch.read_bytes()) if patch.exists() else None
    for name in ("resolve.json", "review.json", "approval.json"):
        hashed = models.get(name)
        if hashed is not None and getattr(hashed, "patch_sha256", None) != patch_hash:
            problems.append(f"{name}: its patch_sha256 is not the sha256 of patch.diff")
    approval = models.get("approval.json")
    if isinstance(approval, ApprovalRecord):
        sig = approval.signature
        if not verify_signature(sig.public_key, sig.value, approval.signed_bytes()):
            problems.append("approval.json: its Ed25519 signature is not valid")
        elif sig.public_key not in report.signed_by:
            report.signed_by.append(sig.public_key)
    return problems
