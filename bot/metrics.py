"""What gwi counts for Prometheus (`GET /metrics`): one registry per process, passed explicitly."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

#: Run stages take from milliseconds (triage) to minutes (an LLM resolving many files).
_STAGE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class Metrics:
    """Counters, gauges and histograms of one gwi process, in a registry of its own (never the
    global one, so two apps in one process, as in tests, do not mix their figures)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.deliveries_received = Counter(
            "gwi_deliveries_received", "Webhook deliveries stored and acknowledged", registry=r)
        self.deliveries_rejected = Counter(
            "gwi_deliveries_rejected", "Webhook requests refused, by reason", ["reason"],
            registry=r)
        self.deliveries_deduplicated = Counter(
            "gwi_deliveries_deduplicated", "Deliveries whose id was already stored", registry=r)
        self.commands_ignored = Counter(
            "gwi_commands_ignored", "Commands past their sender's budget (a comment storm)",
            registry=r)
        self.queue_items = Gauge(
            "gwi_queue_items", "Deliveries and jobs by status", ["table", "status"], registry=r)
        self.queue_oldest_pending_seconds = Gauge(
            "gwi_queue_oldest_pending_seconds", "Age of the oldest pending item", ["table"],
            registry=r)
        self.jobs_finished = Counter(
            "gwi_jobs_finished", "Job tries that ended, by kind and outcome",
            ["kind", "outcome"], registry=r)
        self.run_stage_seconds = Histogram(
            "gwi_run_stage_seconds", "Time of each step of a run, by the state it reached",
            ["stage"], buckets=_STAGE_BUCKETS, registry=r)
        self.github_calls = Counter(
            "gwi_github_api_calls", "GitHub API calls, by method and final status",
            ["method", "status"], registry=r)
        self.github_retries = Counter(
            "gwi_github_api_retries", "GitHub API attempts retried, by the status that failed",
            ["status"], registry=r)
        self.approvals = Counter(
            "gwi_approvals", "Approvals accepted, and refused by code", ["result", "code"],
            registry=r)
        self.pushes = Counter(
            "gwi_pushes", "Approved pushes, by result", ["result"], registry=r)

    def github_call(self, method: str, status: str) -> None:
        self.github_calls.labels(method, status).inc()

    def github_retry(self, status: str) -> None:
        self.github_retries.labels(status).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
