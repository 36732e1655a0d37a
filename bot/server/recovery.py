"""Deliveries missed while the server was down: found in the App's delivery log, redelivered.

GitHub does not retry a delivery that failed (the server was down, or answered 5xx); it only
keeps a log of its attempts for a few days, and redelivers one when asked. At start-up gwi
reads that log back to the last delivery it stored before it stopped (less a margin for
clocks), and asks GitHub to redeliver every delivery whose id it has not stored. Redeliveries
come in through `POST /webhook` like any delivery, so they are verified, deduplicated and
stored the usual way.

Bounded (so many pages listed, so many redeliveries asked per round; the server runs rounds a
minute apart while some are left, see `bot.server.app`) and idempotent: a delivery asked
for is remembered in the queue database and not asked for again while its redelivery may
still be on its way, and a second start-up finds the redelivered ones stored. Any failure is
logged and ends the attempt; it never stops the server from starting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from bot import logs
from bot.github.client import GitHubApp
from bot.github.failures import GitHubError
from bot.github.models import WebhookDelivery
from bot.queue.interface import QueueStore

log = logs.get_logger("gwi.recovery")

#: GitHub's delivery times and this machine's clock may differ; look back this much further.
CLOCK_MARGIN_SECONDS = 300.0
#: At most this many deliveries are listed (GitHub keeps about three days of them).
MAX_LISTED = 1000
#: At most this many redeliveries are asked for per start-up.
MAX_REDELIVERIES = 100
#: A redelivery asked for this recently may still be on its way: it is not asked for again.
REDELIVERY_PATIENCE_SECONDS = 600.0

@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What one start-up's look at the delivery log found and did."""

    since: datetime | None  # None: a first start, with nothing stored to recover up to
    listed: int
    missing: int
    redelivered: int
    failed: int
    truncated: bool = False  # the listing stopped at max_listed before reaching ``since``

    @property
    def left(self) -> bool:
        """Whether deliveries it saw are still to ask for (the next round picks them up)."""
        return self.missing > self.redelivered


async def recover_missed_deliveries(
    app: GitHubApp,
    store: QueueStore,
    *,
    now: datetime | None = None,
    margin: float = CLOCK_MARGIN_SECONDS,
    max_listed: int = MAX_LISTED,
    max_redeliveries: int = MAX_REDELIVERIES,
) -> RecoveryReport:
    """Ask GitHub to redeliver what it tried to send since the last delivery stored here.

    Raises :class:`GitHubError` only when the delivery log cannot be listed; a redelivery
    GitHub refuses is logged and counted in ``failed``.
    """
    moment = now or datetime.now(UTC)
    ledger = store.redelivery_ledger()
    since_ts = await ledger.start_point()
    if since_ts is None:
        # Nothing was ever stored: a new installation, whose past is not gwi's to replay.
        await ledger.save_marker(moment.timestamp())
        log.info("webhooks.recovery_skipped", reason="no delivery was stored before")
        return RecoveryReport(None, 0, 0, 0, 0)
    since = datetime.fromtimestamp(since_ts - margin, UTC)
    listed = await app.list_webhook_deliveries(limit=max_listed, since=since)
    truncated = len(listed) >= max_listed
    if truncated:
        log.warning("webhooks.recovery_truncated", listed=len(listed), since=since.isoformat(),
                    reason="more deliveries than gwi lists since then: older ones are not"
                    " looked at in this round")
    latest: dict[str, WebhookDelivery] = {}  # guid -> its newest attempt
    for attempt in listed:
        if attempt.guid not in latest or attempt.delivered_at > latest[attempt.guid].delivered_at:
            latest[attempt.guid] = attempt
    guids = sorted(latest)
    patience = moment.timestamp() - REDELIVERY_PATIENCE_SECONDS
    stored, pending = await ledger.known(guids, patience)
    missing = sorted(
        (a for g, a in latest.items() if g not in stored and g not in pending),
        key=lambda a: (a.delivered_at, a.id),  # GitHub's ids grow with time: ties in order
    )
    redelivered = failed = 0
    for attempt in missing[:max_redeliveries]:  # oldest first: the order GitHub meant
        try:
            await app.redeliver_webhook_delivery(attempt.id)
        except GitHubError as exc:
            failed += 1
            log.warning("webhooks.redelivery_refused", guid=attempt.guid, error=exc.reason)
            if exc.status in (403, 429):
                break  # rate limited: the rest waits for the next start-up
            continue
        redelivered += 1
        await ledger.remember(attempt.guid, attempt.id, moment.timestamp())
        log.info("webhooks.redelivery_requested", guid=attempt.guid, event=attempt.event,
                 action=attempt.action, delivered_at=attempt.delivered_at.isoformat())
    if len(missing) <= max_redeliveries and not failed and not truncated:
        newest = max((a.delivered_at.timestamp() for a in listed), default=since_ts)
        await ledger.save_marker(min(newest, moment.timestamp()))
    report = RecoveryReport(since, len(listed), len(missing), redelivered, failed, truncated)
    log.info("webhooks.recovery_done", since=since.isoformat(), listed=report.listed,
             missing=report.missing, redelivered=report.redelivered, failed=report.failed)
    return report
