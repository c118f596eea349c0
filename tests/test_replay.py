"""Replay stores: the same contract for memory, SQLite (across processes) and a real Redis."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.redis_server import start_redis, stop_redis
from vsms_guard.errors import GuardError
from vsms_guard.replay import (
    MemoryReplayStore,
    RedisReplayStore,
    ReplayStore,
    SQLiteReplayStore,
    open_store,
)


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """A throw-away redis-server on a free 127.0.0.1 port (skipped only without the binary)."""
    try:
        server = start_redis(tmp_path_factory.mktemp("redis"))
    except RuntimeError as exc:
        pytest.fail(str(exc))
    if server is None:
        pytest.skip("redis-server is not installed (Debian package redis-server)")
    proc, url = server
    try:
        yield url
    finally:
        stop_redis(proc)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request, tmp_path) -> Iterator[ReplayStore]:
    if request.param == "memory":
        made: ReplayStore = MemoryReplayStore()
    elif request.param == "sqlite":
        made = SQLiteReplayStore(tmp_path / "replay.sqlite")
    else:
        url = request.getfixturevalue("redis_url")
        made = RedisReplayStore(url, prefix=f"test:{request.node.name}:")
    yield made
    made.close()


def test_first_add_wins_second_is_a_replay(store):
    assert isinstance(store, ReplayStore)
    assert store.add("evt_a", ttl=60, now=1000) is True
    assert store.add("evt_a", ttl=60, now=1001) is False
    assert store.add("evt_b", ttl=60, now=1001) is True


def test_discard_lets_the_id_in_again(store):
    assert store.add("evt_a", ttl=60, now=1000)
    store.discard("evt_a")
    store.discard("never-seen")
    assert store.add("evt_a", ttl=60, now=1000)


def test_concurrent_adds_of_one_id_have_one_winner(store):
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda _: store.add("evt_race", ttl=60, now=1000), range(64)))
    assert results.count(True) == 1


@pytest.mark.parametrize("make", [MemoryReplayStore, "sqlite"])
def test_expiry_and_purge_with_explicit_time(make, tmp_path):
    store = MemoryReplayStore() if make is MemoryReplayStore else SQLiteReplayStore(tmp_path / "r")
    assert store.add("old", ttl=10, now=1000)
    assert store.add("new", ttl=100, now=1000)
    assert store.add("old", ttl=10, now=1009.9) is False  # one tick before expiry
    assert store.add("old", ttl=10, now=1010) is True  # expired: accepted and renewed
    assert store.add("old", ttl=10, now=1019) is False
    assert store.purge(now=1020) == 1  # "old" (renewed to 1020) goes, "new" stays
    assert store.purge(now=1020) == 0  # idempotent
    assert len(store) == 1
    assert store.add("new", ttl=100, now=1050) is False
    store.close()


def test_redis_keys_expire_on_the_server(redis_url):
    store = RedisReplayStore(redis_url, prefix="test:expiry:")
    assert store.add("evt_x", ttl=0.05)
    assert store.add("evt_x", ttl=0.05) is False
    assert 0 < store._redis.pttl("test:expiry:evt_x") <= 50
    time.sleep(0.12)
    assert store.add("evt_x", ttl=60)
    assert store.purge() == 0
    store.close()


def test_redis_store_shared_by_two_clients_like_two_receivers(redis_url):
    first, second = (
        RedisReplayStore(redis_url, prefix="lb:"),
        RedisReplayStore(redis_url, prefix="lb:"),
    )
    assert first.add("evt_lb", ttl=60)
    assert second.add("evt_lb", ttl=60) is False
    first.close()
    second.close()


def test_memory_store_is_bounded_dropping_oldest_first():
    store = MemoryReplayStore(max_entries=3)
    for i in range(3):
        assert store.add(f"e{i}", ttl=100, now=1000 + i)
    assert store.add("e3", ttl=100, now=1003)
    assert len(store) == 3
    assert store.add("e0", ttl=100, now=1004)  # the oldest was dropped
    assert store.add("e3", ttl=100, now=1004) is False


def test_memory_store_prefers_dropping_expired_entries():
    store = MemoryReplayStore(max_entries=2)
    assert store.add("keep", ttl=1000, now=0)
    assert store.add("short", ttl=1, now=0)
    assert store.add("third", ttl=1000, now=10)  # "short" expired: evicted, "keep" stays
    assert store.add("keep", ttl=1000, now=10) is False


def _add_many(path: str, ids: list[str]) -> list[str]:
    store = SQLiteReplayStore(path)
    won = [i for i in ids if store.add(i, ttl=600, now=1000)]
    store.close()
    return won


def test_sqlite_store_is_safe_across_processes(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    ids = [f"evt_{n:04d}" for n in range(300)]
    SQLiteReplayStore(path).close()  # create the schema once, as a receiver would
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.starmap(_add_many, [(path, ids)] * 4)
    winners = [i for won in results for i in won]
    assert sorted(winners) == ids  # every id accepted exactly once over all processes


def test_sqlite_store_persists_across_reopen(tmp_path):
    path = tmp_path / "persist.sqlite"
    store = SQLiteReplayStore(path)
    assert store.add("evt_p", ttl=60, now=1000)
    store.close()
    again = SQLiteReplayStore(path)
    assert again.add("evt_p", ttl=60, now=1001) is False
    again.close()


def test_bad_configuration_is_a_clear_error(tmp_path):
    with pytest.raises(GuardError):
        MemoryReplayStore(max_entries=0)
    with pytest.raises(GuardError, match="ttl"):
        MemoryReplayStore().add("x", ttl=0)
    with pytest.raises(GuardError, match="cannot open"):
        SQLiteReplayStore(tmp_path / "missing-dir" / "r.sqlite")
    with pytest.raises(GuardError):
        RedisReplayStore()


def test_open_store_specs(tmp_path, redis_url):
    assert isinstance(open_store("memory"), MemoryReplayStore)
    assert isinstance(open_store(str(tmp_path / "a.sqlite")), SQLiteReplayStore)
    assert isinstance(open_store("sqlite:" + str(tmp_path / "b.sqlite")), SQLiteReplayStore)
    assert isinstance(open_store(redis_url), RedisReplayStore)
    assert Path(tmp_path / "b.sqlite").exists()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("redis://:hunter2-pass@127.0.0.1:1/0", "replay store redis://127.0.0.1:1: unreachable"),
        ("redis://127.0.0.1:port/0", "not a valid URL"),
        ("bogus://x", "unknown scheme 'bogus://'"),
        ("s3://bucket/replay", "unknown scheme 's3://'"),
    ],
)
def test_open_store_refuses_unreachable_redis_and_unknown_schemes(tmp_path, spec, message):
    """A dead Redis used to open fine (then 503s, or a purge of "0 replay ids"), and an unknown
    ``scheme://`` was taken for a SQLite file name."""
    with pytest.raises(GuardError) as refused:
        open_store(spec)
    assert message in str(refused.value) and "hunter2" not in str(refused.value)


def test_memory_store_over_its_bound_keeps_the_newest_ids():
    store = MemoryReplayStore(max_entries=1000)
    for n in range(5000):
        assert store.add(f"evt_{n}", ttl=3600, now=1000)
    assert 900 <= len(store) <= 1000
    assert all(store.add(f"evt_{n}", ttl=3600, now=1000) is False for n in range(4900, 5000))


def test_two_receivers_sharing_redis_refuse_each_others_replays(redis_url):
    import json

    from vsms_guard.webhooks import Verifier, WebhookError, sign

    secret = "whsec_" + "Lb3" * 10
    body = json.dumps(
        {"id": "evt_lb_1", "type": "balance.low", "created_at": "2026-11-27T12:00:00Z", "data": {}}
    ).encode()
    now = 1_795_780_800  # 2026-11-27T12:00:00Z
    first = Verifier(secret, replay_store=RedisReplayStore(redis_url, prefix="rx:"))
    second = Verifier(secret, replay_store=RedisReplayStore(redis_url, prefix="rx:"))
    assert first.verify(body, sign(body, secret, timestamp=now), now=now).id == "evt_lb_1"
    with pytest.raises(WebhookError, match="replayed"):
        second.verify(body, sign(body, secret, timestamp=now + 5), now=now + 5)
