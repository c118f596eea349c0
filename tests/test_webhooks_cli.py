"""``vsms-guard webhook sign|verify|serve`` as real subprocesses of the console script."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

VSMS_GUARD = str(Path(sys.executable).with_name("vsms-guard"))  # the console script
SECRET = "whsec_" + "Hu2" * 10
OLD_SECRET = "whsec_" + "Wd6" * 10


def body_bytes(n: int = 0) -> bytes:
    stamp = datetime.now(UTC).isoformat()
    return json.dumps(
        {
            "id": f"evt_01JCLITEST{n:016d}",
            "type": "sms.received",
            "created_at": stamp,
            "data": {"order_id": "o-1", "code": "5521", "message": "code 5521", "test": True},
        }
    ).encode()


def run(*args: str, env: dict[str, str] | None = None, stdin: bytes | None = None):
    done = subprocess.run(
        [VSMS_GUARD, "webhook", *args],
        input=stdin,
        capture_output=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )
    out, err = done.stdout.decode(), done.stderr.decode()
    for secret in (SECRET, OLD_SECRET):
        assert secret not in out and secret not in err
    return done.returncode, out, err


def test_sign_then_verify_from_the_shell(tmp_path):
    body = tmp_path / "event.json"
    body.write_bytes(body_bytes(1))
    env = {"VIRTUALSMS_WEBHOOK_SECRET": SECRET}
    code, headers, _ = run("sign", "--body", str(body), env=env)
    assert code == 0 and "X-VirtualSMS-Signature: sha256=" in headers
    (tmp_path / "headers.txt").write_text(headers)
    rotated = {"VIRTUALSMS_WEBHOOK_SECRET": f"{OLD_SECRET},{SECRET}"}
    verify = ("verify", "--body", str(body), "--headers", str(tmp_path / "headers.txt"))
    code, out, _ = run(*verify, env=rotated)
    assert code == 0 and out.startswith("verified: evt_01JCLITEST") and "test delivery" in out

    body.write_bytes(body_bytes(1).replace(b"5521", b"0000"))
    code, out, _ = run(*verify, env=env)
    assert (code, out.strip()) == (1, "webhook refused: mismatch")


def test_json_headers_stdin_body_and_secret_file(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text(f"# rotated on Monday\n{SECRET}\n")
    data = body_bytes(2)
    code, out, _ = run(
        "sign", "--secret-file", str(secret_file), "--body", "-", "--format", "json", stdin=data
    )
    assert code == 0
    headers = json.loads(out)
    (tmp_path / "h.json").write_text(json.dumps(headers))
    code, out, _ = run(
        "verify",
        "--body",
        "-",
        "--secret-file",
        str(secret_file),
        "--headers",
        str(tmp_path / "h.json"),
        stdin=data,
    )
    assert code == 0, out
    stale = [f"-H=X-VirtualSMS-Timestamp: {int(time.time()) - 1000}"]
    code, out, _ = run(
        "verify",
        "--body",
        "-",
        "--secret-file",
        str(secret_file),
        "--headers",
        str(tmp_path / "h.json"),
        *stale,
        stdin=data,
    )
    assert code == 1 and "stale" in out


def test_replay_store_option_catches_the_second_verify(tmp_path):
    data = body_bytes(3)
    (tmp_path / "b").write_bytes(data)
    env = {"HOOK_SECRET": SECRET}
    _, headers, _ = run(
        "sign", "--secret-env", "HOOK_SECRET", "--body", str(tmp_path / "b"), env=env
    )
    (tmp_path / "h").write_text(headers)
    args = (
        "verify",
        "--secret-env",
        "HOOK_SECRET",
        "--body",
        str(tmp_path / "b"),
        "--headers",
        str(tmp_path / "h"),
        "--replay",
        str(tmp_path / "replay.sqlite"),
    )
    assert run(*args, env=env)[0] == 0
    code, out, _ = run(*args, env=env)
    assert code == 1 and "replayed" in out


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("sign", "--body", "/nonexistent"), {"VIRTUALSMS_WEBHOOK_SECRET": SECRET}, "cannot read"),
        (("sign", "--body", "-"), {"VIRTUALSMS_WEBHOOK_SECRET": ""}, "not set or empty"),
        (("sign", "--body", "-", "--secret-env", "NOPE_NOT_SET"), {}, "NOPE_NOT_SET"),
        (("sign", "--body", "-", "--secret-file", "/nonexistent"), {}, "cannot read secret file"),
        (
            ("verify", "--body", "-", "-H", "no colon here"),
            {"VIRTUALSMS_WEBHOOK_SECRET": SECRET},
            "Name: value",
        ),
        (
            ("verify", "--body", "-", "-H", "A: b", "--tolerance", "-5"),
            {"VIRTUALSMS_WEBHOOK_SECRET": SECRET},
            "bad_config",
        ),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(args, env, message):
    code, _, err = run(*args, env=env, stdin=b"{}")
    assert code == 2 and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [["--secret", SECRET], [f"--secret={SECRET}"], [SECRET], ["--secret-env", SECRET]],
    ids=["option", "option=value", "positional", "value-as-env-name"],
)
def test_secrets_on_the_command_line_are_refused_without_echo(argv):
    code, _, err = run("sign", "--body", "-", *argv, stdin=b"{}")
    assert code == 2 and "--secret-env" in err  # run() checks the value is not echoed


def test_serve_receives_a_signed_delivery_and_stores_it(tmp_path):
    db = tmp_path / "events.sqlite"
    proc = subprocess.Popen(
        [VSMS_GUARD, "webhook", "serve", "--port", "0", "--db", str(db)],
        env={**os.environ, "VIRTUALSMS_WEBHOOK_SECRET": f"{OLD_SECRET},{SECRET}"},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = None
        for line in proc.stderr:  # serve announces the URL of the port it was given
            assert SECRET not in line
            found = re.search(r"POST (http://127\.0\.0\.1:\d+)/webhooks/virtualsms", line)
            if found:
                url = found.group(1)
                break
        assert url, "serve did not start"
        data = body_bytes(4)
        env = {"VIRTUALSMS_WEBHOOK_SECRET": SECRET}
        (tmp_path / "b").write_bytes(data)
        _, headers_text, _ = run("sign", "--body", str(tmp_path / "b"), env=env)
        headers = dict(line.split(": ", 1) for line in headers_text.splitlines())
        first = httpx.post(url + "/webhooks/virtualsms", content=data, headers=headers)
        second = httpx.post(url + "/webhooks/virtualsms", content=data, headers=headers)
        forged = httpx.post(url + "/webhooks/virtualsms", content=data + b" ", headers=headers)
    finally:
        proc.terminate()
        proc.wait(20)
    assert first.json()["status"] == "ok" and second.json()["status"] == "duplicate"
    assert forged.status_code == 400
    with sqlite3.connect(db) as con:
        stored = con.execute("SELECT id, type, test FROM events").fetchall()
        bodies = con.execute("SELECT body FROM sms_bodies").fetchall()
        statuses = [r[0] for r in con.execute("SELECT status FROM access_log ORDER BY id")]
    assert stored == [(json.loads(data)["id"], "sms.received", 1)]
    assert json.loads(bodies[0][0]) == {"message": "code 5521", "code": "5521"}
    assert statuses == [200, 200, 400]


def test_serve_refuses_a_bad_or_busy_port_in_one_line_before_creating_files(tmp_path):
    import socket

    db = tmp_path / "events.sqlite"
    env = {"VIRTUALSMS_WEBHOOK_SECRET": SECRET}
    code, _, err = run("serve", "--port", "99999", "--db", str(db), env=env)
    assert code == 2 and "--port 99999: must be 0-65535" in err and err.count("\n") == 1
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = str(busy.getsockname()[1])
        code, _, err = run("serve", "--port", port, "--db", str(db), env=env)
    assert code == 2 and f"cannot listen on 127.0.0.1:{port}" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not db.exists()


@pytest.mark.parametrize("value", ["nan", "inf", "soon"])
def test_verify_refuses_a_non_finite_now(tmp_path, value):
    (tmp_path / "b").write_bytes(body_bytes(5))
    env = {"VIRTUALSMS_WEBHOOK_SECRET": SECRET}
    code, _, err = run("verify", "--body", str(tmp_path / "b"), "--now", value, env=env)
    assert code == 2 and "--now" in err and "Traceback" not in err


def test_a_malformed_header_line_is_not_echoed(tmp_path):
    (tmp_path / "b").write_bytes(body_bytes(6))
    env = {"VIRTUALSMS_WEBHOOK_SECRET": SECRET}
    code, out, err = run("verify", "--body", str(tmp_path / "b"), "-H", OLD_SECRET, env=env)
    assert code == 2 and "header 1 is not in 'Name: value' form" in err  # run() checks no echo


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("verify",), "verify needs --body FILE (or --body - to read stdin)"),
        (("sign",), "sign needs --body FILE (or --body - to read stdin)"),
        (("verify", "--body", "-"), "verify needs the delivery's headers"),
        (("sign", "--body", "-"), "stdin: the body is empty"),
        (("verify", "--body", "-", "-H", "X-VirtualSMS-Signature: 00"), "the body is empty"),
    ],
)
def test_sign_and_verify_never_read_a_silent_stdin_or_an_empty_body(args, message):
    """Without ``--body`` both used to read stdin (a prompt hang for ``sign``, an empty body
    signed or reported as missing_signature): now a usage error, exit 2, one line."""
    code, out, err = run(*args, env={"VIRTUALSMS_WEBHOOK_SECRET": SECRET}, stdin=b"")
    assert (code, out) == (2, "") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("action", ["sign", "serve"])
@pytest.mark.parametrize("secret", ["x", "abc"])
def test_a_secret_too_short_to_mask_is_refused(tmp_path, action, secret):
    db = tmp_path / "events.sqlite"
    args = ("--body", "-") if action == "sign" else ("--port", "0", "--db", str(db))
    code, out, err = run(action, *args, env={"VIRTUALSMS_WEBHOOK_SECRET": secret}, stdin=b"{}")
    assert code == 2 and "shorter than 4 characters is refused" in err, err
    assert err.count("\n") == 1 and "Traceback" not in err and not db.exists()


def _dead_redis() -> str:
    import socket

    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        return f"redis://127.0.0.1:{probe.getsockname()[1]}/0"


def test_serve_and_verify_refuse_bad_paths_and_unreachable_stores_in_one_line(tmp_path):
    """These were "internal error: AssertionError/ConnectionError", or a receiver that started
    and then answered 503 to every delivery."""
    db = tmp_path / "events.sqlite"
    env = {"VIRTUALSMS_WEBHOOK_SECRET": SECRET}
    serve = ("serve", "--port", "0", "--db", str(db))
    (tmp_path / "b").write_bytes(body_bytes(9))
    verify = ("verify", "--body", str(tmp_path / "b"), "-H", "X-VirtualSMS-Signature: 00")
    for args, message in (
        ((*serve, "--path", "nopath"), "--path must start with '/'"),
        ((*serve, "--replay", _dead_redis()), "unreachable (ConnectionError)"),
        ((*serve, "--replay", "bogus://x"), "unknown scheme 'bogus://'"),
        ((*verify, "--replay", _dead_redis()), "unreachable (ConnectionError)"),
    ):
        code, _, err = run(*args, env=env)
        assert code == 2 and message in err, (args, err)
        assert err.count("\n") == 1 and "internal error" not in err and "Traceback" not in err
    assert not db.exists()
