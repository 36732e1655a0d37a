"""Load generator: N signed deliveries at a given concurrency; prints one JSON line of figures.

It speaks HTTP/1.1 over keep-alive connections with asyncio streams and requests built
ahead of time, so that on a small machine it costs the server being measured as little CPU
as possible (a full HTTP client in the same language would be the bottleneck itself).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any


def percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def request_bytes(port: int, body: bytes, secret: str, event: str, delivery_id: str) -> bytes:
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    head = (
        f"POST /webhook HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        f"User-Agent: GitHub-Hookshot/bench\r\n"
        f"Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"X-GitHub-Event: {event}\r\n"
        f"X-GitHub-Delivery: {delivery_id}\r\n"
        f"X-Hub-Signature-256: {signature}\r\n"
        f"\r\n"
    )
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def run(
    port: int, body: bytes, secret: str, event: str, prefix: str, n: int, concurrency: int
) -> dict[str, Any]:
    requests = [request_bytes(port, body, secret, event, f"{prefix}-{i}") for i in range(n)]
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    pending = iter(requests)

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for request in pending:  # shared iterator: each delivery is sent once
                started = time.perf_counter()
                writer.write(request)
                statuses[await read_response(reader)] += 1
                latencies.append(time.perf_counter() - started)
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    accepted = statuses[202] + statuses[200]
    return {
        "sent": n,
        "seconds": round(elapsed, 3),
        "accepted_per_s": round(accepted / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "max_ms": round(latencies[-1] * 1000, 2),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body", type=Path, required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--event", default="pull_request")
    parser.add_argument("--prefix", required=True)
    parser.add_argument("-n", type=int, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    args = parser.parse_args()
    body = args.body.read_bytes()
    figures = asyncio.run(
        run(args.port, body, args.secret, args.event, args.prefix, args.n, args.concurrency)
    )
    json.dump(figures, sys.stdout)
    print()


if __name__ == "__main__":
    main()
