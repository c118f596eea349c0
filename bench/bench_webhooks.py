"""Webhook verification and replay-store throughput, with ratios against peers in one run.

Verification on 1 KiB bodies, like for like:
- signature + timestamp window: ours (``Verifier.check_signature``) vs Stripe's
  ``WebhookSignature.verify_header`` and a bare ``hmac.new(...).hexdigest()`` + ``compare_digest``;
- full verification returning the parsed event: ours (``Verifier.verify``: + JSON, envelope,
  signed ``created_at``) vs ``standardwebhooks`` ``Webhook.verify`` (which also parses JSON).
Replay stores: ``add`` of fresh ids per second for memory, SQLite and a local redis-server.

Run: ``.venv/bin/python -m bench webhooks``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from tests.redis_server import start_redis
from vsms_guard.replay import MemoryReplayStore, RedisReplayStore, SQLiteReplayStore
from vsms_guard.webhooks import SIGNATURE_HEADER, Verifier, sign

BODY_SIZE = 1024
SECRET = "whsec_" + base64.b64encode(b"bench-secret-bytes-0123456789ab").decode()
ROUNDS = 7
ROUND_SECONDS = 0.25


def body_of_size(n: int = 0, size: int = BODY_SIZE) -> bytes:
    """A VirtualSMS ``sms.received`` envelope padded to exactly ``size`` bytes."""
    stamp = datetime.now(UTC).isoformat()
    envelope = {
        "id": f"evt_01JBENCH{n:018d}",
        "type": "sms.received",
        "created_at": stamp,
        "data": {
            "order_id": "6f1c2c3e-0000-4000-8000-000000000001",
            "phone_number": "+447700900123",
            "service": "telegram",
            "country": "GB",
            "code": "482913",
            "message": "",
            "sender": "Telegram",
            "received_at": stamp,
            "test": False,
        },
    }
    base = len(json.dumps(envelope).encode())
    envelope["data"]["message"] = "x" * (size - base)
    body = json.dumps(envelope).encode()
    assert len(body) == size
    return body


def rates(candidates: dict[str, Callable[[], object]], inner: int = 500) -> dict[str, float]:
    """Best calls/second of each candidate. Rounds are interleaved, so load from other processes
    on the machine hits every candidate alike; the best round damps scheduler noise."""
    best = dict.fromkeys(candidates, 0.0)
    for _ in range(ROUNDS):
        for name, fn in candidates.items():
            calls, start = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - start) < ROUND_SECONDS:
                for _ in range(inner):
                    fn()
                calls += inner
            best[name] = max(best[name], calls / elapsed)
    return best


def verification() -> None:
    import stripe
    from standardwebhooks.webhooks import Webhook

    body = body_of_size()
    now = time.time()
    headers = sign(body, SECRET)
    ours = Verifier(SECRET)
    ours.verify(body, headers, now=now)  # sanity: it really verifies

    key, signature = SECRET.encode(), headers[SIGNATURE_HEADER].removeprefix("sha256=")

    def bare() -> bool:
        return hmac.compare_digest(hmac.new(key, body, hashlib.sha256).hexdigest(), signature)

    text = body.decode()
    stripe_header = stripe.WebhookSignature.generate_signature_header(text, SECRET)

    def stripe_verify() -> bool:
        return stripe.WebhookSignature.verify_header(text, stripe_header, SECRET, tolerance=300)

    std = Webhook(SECRET)
    msg_id, stamp = "msg_bench", datetime.now(UTC)
    std_headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": std.sign(msg_id, stamp, text),
    }
    std.verify(body, std_headers)
    assert bare() and stripe_verify()

    figures = rates(
        {
            "ours check_signature": lambda: ours.check_signature(body, headers, now=now),
            "ours verify (event)": lambda: ours.verify(body, headers, now=now),
            "bare hmac+compare": bare,
            "stripe verify_header": stripe_verify,
            "standardwebhooks": lambda: std.verify(body, std_headers),
        }
    )
    print(f"verifications/s on {BODY_SIZE} B bodies (best of {ROUNDS} rounds)")
    for name, value in figures.items():
        print(f"  {name:<22} {value:>12,.0f}/s")
    sig, full = figures["ours check_signature"], figures["ours verify (event)"]
    rows = [
        ("check_signature / stripe verify_header", sig, "stripe verify_header", 1.5),
        ("verify (event) / standardwebhooks", full, "standardwebhooks", 1.5),
        ("check_signature / bare hmac+compare", sig, "bare hmac+compare", 0.7),
        ("verify (event) / stripe verify_header", full, "stripe verify_header", None),
        ("verify (event) / bare hmac+compare", full, "bare hmac+compare", None),
    ]
    print("ratios")
    for label, value, peer, target in rows:
        ratio = value / figures[peer]
        verdict = (
            ""
            if target is None
            else f"target >= {target}: {'met' if ratio >= target else 'MISSED'}"
        )
        print(f"  {label:<40} {ratio:5.2f}x  {verdict}")


def _redis_server(workdir: Path) -> tuple[subprocess.Popen[bytes], str] | None:
    try:
        return start_redis(workdir)
    except RuntimeError:
        return None


def store_rate(store, count: int) -> float:
    ids = [f"evt_{i:026d}" for i in range(count)]
    start = time.perf_counter()
    for key in ids:
        store.add(key, ttl=3600)
    elapsed = time.perf_counter() - start
    assert store.add(ids[0], ttl=3600) is False
    return count / elapsed


def replay_stores() -> None:
    print("replay-store add() of fresh ids per second")
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        results = {"memory": store_rate(MemoryReplayStore(), 100_000)}
        sqlite = SQLiteReplayStore(Path(tmp) / "replay.sqlite")
        results["sqlite (WAL, file)"] = store_rate(sqlite, 20_000)
        sqlite.close()
        server = _redis_server(Path(tmp))
        if server is None:
            print("  redis: skipped (redis-server not installed)")
        else:
            proc, url = server
            try:
                redis_store = RedisReplayStore(url)
                results["redis (SET NX PX)"] = store_rate(redis_store, 20_000)
                redis_store.close()
            finally:
                proc.terminate()
                proc.wait(10)
    for name, value in results.items():
        print(f"  {name:<22} {value:>12,.0f}/s")
    if "redis (SET NX PX)" in results:
        print(
            f"  sqlite / redis  {results['sqlite (WAL, file)'] / results['redis (SET NX PX)']:.2f}x"
        )


def main() -> None:
    verification()
    replay_stores()


if __name__ == "__main__":
    main()
