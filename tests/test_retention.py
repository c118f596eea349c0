"""Retention: windows as data, boundaries under freezegun (UTC and across DST), a purge that
removes SMS text everywhere and nothing else, and the cron command."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time

from vsms_guard import retention
from vsms_guard.errors import GuardError
from vsms_guard.receiver import EventStore
from vsms_guard.replay import SQLiteReplayStore
from vsms_guard.retention import load_policy, parse_duration, purge
from vsms_guard.webhooks import Event, Verifier, clock, sign

DAY = 86400
SECRET = "whsec_" + "Tn8" * 10
VSMS_GUARD = [str(Path(sys.executable).with_name("vsms-guard"))]  # the console script


def event(n: int, *, code: str | None = None) -> Event:
    code = code or f"{n:06d}"
    data = {
        "order_id": f"order-{n}",
        "phone_number": "+447700900777",
        "service": "telegram",
        "country": "GB",
        "code": code,
        "message": f"Telegram code {code}. Do not share it.",
        "sender": "Telegram",
        "received_at": "2026-01-01T00:00:00Z",
        "test": False,
    }
    payload = {"id": f"evt_{n}", "type": "sms.received", "created_at": "x", "data": data}
    return Event(
        id=f"evt_{n}", type="sms.received", created_at="x", data=dict(data), payload=payload
    )


@pytest.fixture
def store(tmp_path):
    made = EventStore(tmp_path / "events.sqlite")
    yield made
    made.close()


@pytest.fixture
def tz_berlin():
    """Local zone with DST, to show that no boundary moves with it."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/Berlin"
    time.tzset()
    yield
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()


def test_shipped_policy_matches_security_md():
    policy = load_policy()
    assert policy.sms_body == 7 * DAY
    assert policy.access_log == 30 * DAY
    assert policy.order_metadata is None  # account lifetime
    assert policy.replay_ids == 3 * DAY > 14.6 * 3600  # longer than the vendor's retries
    assert {"message", "code"} <= set(policy.sms_body_fields)


@pytest.mark.parametrize(
    ("text", "seconds"), [("7d", 7 * DAY), ("36h", 129600), ("15m", 900), (" 45s ", 45)]
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds
    assert parse_duration(retention.format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["7", "0d", "-1d", "7 days", "", None, 7, "1w"])
def test_bad_durations_are_refused(text):
    with pytest.raises(GuardError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    "content",
    [
        "not toml [",
        '[windows]\nsms_body = "7d"\n',
        '[windows]\nsms_body = "soon"\naccess_log = "30d"\nreplay_ids = "3d"\n[purge]\n[sms]\n'
        'sms_body_fields = ["message"]\n',
        '[windows]\nsms_body = "7d"\naccess_log = "30d"\nreplay_ids = "3d"\n[purge]\n[sms]\n'
        "sms_body_fields = []\n",
    ],
)
def test_bad_policy_files_are_refused(tmp_path, content):
    path = tmp_path / "retention.toml"
    path.write_text(content)
    with pytest.raises(GuardError, match=str(path)):
        load_policy(path)


@pytest.mark.parametrize(
    "start",
    [
        datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC),
        datetime(2026, 3, 25, 12, 0, 0, tzinfo=UTC),  # Berlin springs forward on 29 March
        datetime(2026, 10, 20, 12, 0, 0, tzinfo=UTC),  # Berlin falls back on 25 October
    ],
    ids=["summer", "across-spring-dst", "across-autumn-dst"],
)
def test_boundaries_one_second_either_side(store, tmp_path, tz_berlin, start):
    policy = load_policy()
    replay = SQLiteReplayStore(tmp_path / "events.sqlite")
    verifier = Verifier(SECRET, replay_store=replay)
    with freeze_time(start) as frozen:
        store.save(event(1))
        store.log_access(method="POST", path="/w", status=200)
        body = json.dumps(
            {"id": "evt_r", "type": "order.expired", "created_at": start.isoformat(), "data": {}}
        ).encode()
        verifier.verify(body, sign(body, SECRET))
        replay_ttl = verifier.max_age + verifier.tolerance

        windows = [
            ("sms_bodies", policy.sms_body),
            ("access_log", policy.access_log),
            ("replay_ids", replay_ttl),
        ]
        for field, window in sorted(windows, key=lambda w: w[1]):
            frozen.move_to(start + timedelta(seconds=window - 1))
            assert getattr(purge(store, policy, replay_store=replay), field) == 0, field
            frozen.move_to(start + timedelta(seconds=window + 1))
            assert getattr(purge(store, policy, replay_store=replay), field) == 1, field
    assert store.get("evt_1")["data"]["order_id"] == "order-1"  # metadata outlives every window
    replay.close()


def test_no_sms_body_survives_anywhere_past_its_window(store, tmp_path):
    policy = load_policy()
    db = tmp_path / "events.sqlite"
    replay = SQLiteReplayStore(db)
    now = clock()
    codes = [f"{n}{n}{n}9{n}{n}" for n in range(1, 6)]
    for n, code in enumerate(codes):
        store.save(event(n, code=code), now=now - policy.sms_body - 60)
        store.log_access(method="POST", path="/w", status=200, event_id=f"evt_{n}", now=now)
        replay.add(f"evt_{n}", ttl=10 * DAY, now=now)
    result = purge(store, policy, replay_store=replay, now=now)
    assert result.sms_bodies == len(codes)
    with sqlite3.connect(db) as con:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        dump = "\n".join(
            repr(row) for table in tables for row in con.execute(f"SELECT * FROM {table}")
        )
    for code in codes:
        assert code not in dump
    assert "Do not share" not in dump
    for path in db.parent.iterdir():  # the file, its WAL and free pages too
        raw = path.read_bytes()
        assert not any(code.encode() in raw for code in codes), path.name
    for n in range(len(codes)):
        assert store.get(f"evt_{n}")["data"]["order_id"] == f"order-{n}"
    replay.close()


def test_purge_is_idempotent_and_loses_nothing_else(store, tmp_path):
    policy = load_policy()
    replay = SQLiteReplayStore(tmp_path / "events.sqlite")
    now = clock()
    store.save(event(1), now=now - policy.sms_body - 1)  # body due
    store.save(event(2), now=now - policy.sms_body + 1)  # body kept
    store.save(event(3), now=now - 400 * DAY)  # metadata kept for the account's lifetime
    store.log_access(method="POST", path="/w", status=200, now=now - policy.access_log - 1)
    store.log_access(method="POST", path="/w", status=400, reason="mismatch", now=now - DAY)
    replay.add("expired", ttl=10, now=now - 11)
    replay.add("live", ttl=10, now=now)
    before = {n: store.get(f"evt_{n}") for n in (1, 2, 3)}

    first = purge(store, policy, replay_store=replay, now=now)
    second = purge(store, policy, replay_store=replay, now=now)

    assert (first.sms_bodies, first.access_log, first.events, first.replay_ids) == (2, 1, 0, 1)
    assert second.total == 0
    after = {n: store.get(f"evt_{n}") for n in (1, 2, 3)}
    assert after[2] == before[2]  # body still inside its window
    for n in (1, 3):
        expected = dict(before[n])
        expected["data"] = {
            k: v for k, v in before[n]["data"].items() if k not in policy.sms_body_fields
        }
        assert after[n] == expected
    assert [r["reason"] for r in store.access_log()] == ["mismatch"]
    assert replay.add("live", ttl=10, now=now) is False
    assert store.event_ids() == ["evt_3", "evt_1", "evt_2"]
    with sqlite3.connect(tmp_path / "events.sqlite") as con:
        purged_at = dict(con.execute("SELECT id, body_purged_at FROM events"))
    assert purged_at == {"evt_1": now, "evt_2": None, "evt_3": now}
    replay.close()


def test_bounded_order_metadata_is_purged_when_the_policy_says_so(store, tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text(
        load_policy()
        .source.read_text()
        .replace('order_metadata = "account-lifetime"', 'order_metadata = "400d"')
    )
    policy = load_policy(path)
    now = clock()
    store.save(event(1), now=now - 401 * DAY)
    store.save(event(2), now=now - 399 * DAY)
    assert purge(store, policy, now=now).events == 1
    assert store.event_ids() == ["evt_2"]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*VSMS_GUARD, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=Path(__file__).resolve().parents[1],
        timeout=60,
    )


def test_cli_purge_from_cron(store, tmp_path):
    policy = load_policy()
    store.save(event(1), now=clock() - policy.sms_body - 5)
    store.save(event(2))
    done = run_cli("retention", "purge", "--db", str(tmp_path / "events.sqlite"))
    assert done.returncode == 0, done.stderr
    assert "purged: 1 SMS bodies" in done.stdout
    again = run_cli(
        "retention", "purge", "--db", str(tmp_path / "events.sqlite"), "--format", "json"
    )
    assert json.loads(again.stdout) == {
        "sms_bodies": 0,
        "access_log": 0,
        "events": 0,
        "replay_ids": 0,
    }
    assert "message" not in store.get("evt_1")["data"] and "message" in store.get("evt_2")["data"]


def test_cli_show_and_errors(tmp_path):
    shown = run_cli("retention", "show", "--format", "json")
    assert shown.returncode == 0
    assert json.loads(shown.stdout)["sms_body"] == "7d"
    missing = run_cli("retention", "purge", "--db", str(tmp_path / "nope.sqlite"))
    assert missing.returncode == 2 and not (tmp_path / "nope.sqlite").exists()
    assert missing.stderr.count("\n") == 1 and "no such event store" in missing.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('[windows]\nsms_body = "a week"\n')
    refused = run_cli("retention", "show", "--policy", str(bad))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr


def test_cli_purge_refuses_a_database_that_is_not_an_event_store(tmp_path):
    other = tmp_path / "app.sqlite"
    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE users (name TEXT)")
    before = other.read_bytes()
    done = run_cli("retention", "purge", "--db", str(other))
    assert done.returncode == 2 and "not a vsms-guard event store" in done.stderr
    assert done.stderr.count("\n") == 1 and other.read_bytes() == before
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n")
    done = run_cli("retention", "purge", "--db", str(text))
    assert done.returncode == 2 and "Traceback" not in done.stderr


def _free_port() -> int:
    import socket

    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("redis://127.0.0.1:{port}/0", "unreachable"),
        ("bogus://x", "unknown scheme 'bogus://'"),
        ("https://example.invalid/replay", "unknown scheme 'https://'"),
    ],
)
def test_cli_purge_with_an_unusable_replay_store_is_exit_2_not_a_clean_purge(
    store, tmp_path, spec, message
):
    spec = spec.format(port=_free_port())
    done = run_cli("retention", "purge", "--db", str(tmp_path / "events.sqlite"), "--replay", spec)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1 and "purged" not in done.stdout
