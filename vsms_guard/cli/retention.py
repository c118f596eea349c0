"""``vsms-guard retention show|purge``: print the windows in force, or apply them from cron.

Example crontab line: ``17 * * * * vsms-guard retention purge --db /var/lib/vsms/webhooks.sqlite``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
from dataclasses import asdict
from pathlib import Path

from vsms_guard import retention
from vsms_guard.cli.args import OneLineParser
from vsms_guard.errors import GuardError
from vsms_guard.findings import EXIT_CLEAN


def _show(args: argparse.Namespace) -> int:
    policy = retention.load_policy(args.policy)
    rows = {
        "sms_body": retention.format_duration(policy.sms_body),
        "access_log": retention.format_duration(policy.access_log),
        "order_metadata": retention.format_duration(policy.order_metadata),
        "replay_ids": retention.format_duration(policy.replay_ids),
        "purge_interval": retention.format_duration(policy.purge_interval),
    }
    if args.format == "json":
        print(json.dumps({**rows, "sms_body_fields": list(policy.sms_body_fields)}, indent=2))
    else:
        print(f"policy: {policy.source}")
        for name, value in rows.items():
            print(f"  {name:<15} {value}")
        print(f"  {'sms_body_fields':<15} {', '.join(policy.sms_body_fields)}")
    return EXIT_CLEAN


def _purge(args: argparse.Namespace) -> int:
    from vsms_guard.receiver import EventStore
    from vsms_guard.replay import open_store

    if not args.db.is_file():  # never create an empty store and report a clean purge
        raise GuardError(f"{args.db}: no such event store")
    if not _is_event_store(args.db):  # never add our tables to some other database
        raise GuardError(f"{args.db}: not a vsms-guard event store (no 'events' table)")
    policy = retention.load_policy(args.policy)
    # An unreachable Redis or an unknown scheme is exit 2 here, never "purged … 0 replay ids".
    replay = open_store(args.replay or str(args.db))
    try:
        store = EventStore(args.db, sms_body_fields=policy.sms_body_fields)
    except BaseException:
        replay.close()
        raise
    try:
        result = retention.purge(store, policy, replay_store=replay)
    finally:
        replay.close()
        store.close()
    if args.format == "json":
        print(json.dumps(asdict(result)))
    else:
        print(
            f"purged: {result.sms_bodies} SMS bodies, {result.access_log} access-log rows, "
            f"{result.events} events, {result.replay_ids} replay ids"
        )
    return EXIT_CLEAN


def _is_event_store(path: Path) -> bool:
    """True when ``path`` is a SQLite file holding the receiver's ``events`` table (read-only
    look, so a wrong ``--db`` is left untouched)."""
    try:
        uri = path.resolve().as_uri() + "?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            row = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'"
            ).fetchone()
    except sqlite3.Error:
        return False
    return row is not None


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=prog,
        description="Show the retention windows in force, or purge stored data past them.",
    )
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("show", help="print the retention windows in force")
    p.add_argument("--policy", type=Path, help="policy file (default: the shipped one)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(run=_show)
    p = sub.add_parser("purge", help="delete data past its window (idempotent)")
    p.add_argument("--db", type=Path, required=True, help="event store of 'webhook serve'")
    p.add_argument("--replay", metavar="STORE", help="replay store if not in --db (redis://…)")
    p.add_argument("--policy", type=Path, help="policy file (default: the shipped one)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(run=_purge)
    return parser


def main(argv: list[str], prog: str = "vsms-guard retention") -> int:
    args = build_parser(prog).parse_args(argv)
    return args.run(args)
