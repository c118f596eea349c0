"""``vsms-mcp sandbox`` as users start it: a real subprocess of the console script on a port."""

from __future__ import annotations

import os
import queue
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.fakes import fake_key
from tests.test_sandbox_webhooks import SECRET, Receiver, wait_until
from vsms_guard import keys, webhooks

SCRIPT = str(Path(sys.executable).with_name("vsms-mcp"))
START_WAIT = 20.0
URL_RE = re.compile(r"base URL\s+(http://\S+)")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUALSMS_API_KEY"}
    env.update(extra)
    return env


@contextmanager
def sandbox_process(args: list[str], env: dict[str, str]) -> Iterator[tuple[str, list[str]]]:
    """Start ``vsms-mcp sandbox ARGS``; yield its base URL and the stderr lines seen so far."""
    proc = subprocess.Popen(
        [SCRIPT, "sandbox", "--port", "0", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    seen: list[str] = []
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True).start()
    try:
        deadline = time.monotonic() + START_WAIT
        url = None
        while url is None:
            assert proc.poll() is None, f"sandbox exited early: {seen}"
            try:
                seen.append(lines.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                pytest.fail(f"no base URL printed: {seen}")
            match = URL_RE.search(seen[-1])
            url = match.group(1) if match else None
        while not lines.empty() or len(seen) < 3:  # the key line follows the URL line
            seen.append(lines.get(timeout=START_WAIT))
        yield url, seen
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C: graceful stop, exit 0
        assert proc.wait(timeout=START_WAIT) == 0


def run_fails(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        [SCRIPT, "sandbox", *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    return done.stderr


def test_operator_key_from_the_environment(tmp_path):
    key = fake_key("cli-operator")
    with sandbox_process(["--balance", "3.5"], clean_env(VIRTUALSMS_API_KEY=key)) as (url, err):
        health = httpx.get(f"{url}/health").json()
        balance = httpx.get(f"{url}/api/v1/customer/balance", headers={"X-API-Key": key})
        assert health["sandbox"] is True
        assert balance.json() == {"balance_usd": 3.5}
    text = "".join(err)
    assert "not the service" in text
    assert keys.mask(key) in text and key not in text


def test_new_key_written_to_a_private_file(tmp_path):
    key_file = tmp_path / "demo-key"
    with sandbox_process(["--key-file", str(key_file)], clean_env()) as (url, err):
        key = key_file.read_text().strip()
        assert keys.is_key(key)
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        balance = httpx.get(f"{url}/api/v1/customer/balance", headers={"X-API-Key": key})
        assert balance.json() == {"balance_usd": 10.0}
    assert key not in "".join(err)


def test_a_restart_reuses_the_key_file(tmp_path):
    key_file = tmp_path / "demo-key"
    with sandbox_process(["--key-file", str(key_file)], clean_env()) as (url, _):
        first = key_file.read_text().strip()
    with sandbox_process(["--key-file", str(key_file)], clean_env()) as (url, err):
        balance = httpx.get(f"{url}/api/v1/customer/balance", headers={"X-API-Key": first})
        assert balance.status_code == 200
    assert key_file.read_text().strip() == first
    assert any("read from" in line for line in err) and first not in "".join(err)


def test_an_empty_key_file_is_a_clean_error(tmp_path):
    key_file = tmp_path / "demo-key"
    key_file.write_text("\n")
    assert "one key on one line" in run_fails(["--key-file", str(key_file)], clean_env())


def test_signed_webhooks_with_the_secret_from_the_environment():
    key = fake_key("cli-webhooks")
    env = clean_env(VIRTUALSMS_API_KEY=key, SANDBOX_HOOK_SECRET=SECRET)
    with Receiver() as receiver:
        args = ["--sms-delay", "0.1", "--webhook-url", receiver.url]
        with sandbox_process([*args, "--webhook-secret-env", "SANDBOX_HOOK_SECRET"], env) as (
            url,
            err,
        ):
            catalog = httpx.get(f"{url}/api/v1/catalog/countries", params={"service": "google"})
            country = next(r["id"] for r in catalog.json()["countries"] if r["count"])
            order = httpx.post(
                f"{url}/api/v1/customer/purchase",
                json={"service": "google", "country": country},
                headers={"X-API-Key": key},
            ).json()
            wait_until(lambda: len(receiver.received) == 1)
        body, headers = receiver.received[0]
    event = webhooks.verify(body, headers, SECRET)
    assert event.type == "sms.received" and event.data["order_id"] == order["order_id"]
    assert SECRET not in "".join(err)


@pytest.mark.parametrize(
    ("args", "env_extra", "message"),
    [
        ([], {}, "VIRTUALSMS_API_KEY"),
        (["--webhook-url", "http://127.0.0.1:9/h"], {"VIRTUALSMS_API_KEY": "k" * 8}, "secret"),
        (
            ["--webhook-url", "http://127.0.0.1:9/h", "--webhook-secret-env", "UNSET_HOOK_VAR"],
            {"VIRTUALSMS_API_KEY": "k" * 8},
            "UNSET_HOOK_VAR",
        ),
        (
            ["--webhook-url", "ftp://example.invalid/h", "--webhook-secret-env", "HOME"],
            {"VIRTUALSMS_API_KEY": "k" * 8},
            "http",
        ),
        (["--port", "70000"], {"VIRTUALSMS_API_KEY": "k" * 8}, "--port"),
        (["--sms-delay", "-1"], {"VIRTUALSMS_API_KEY": "k" * 8}, ">= 0"),
        (["--balance", "nan"], {"VIRTUALSMS_API_KEY": "k" * 8}, "finite"),
        (["--balance", "inf"], {"VIRTUALSMS_API_KEY": "k" * 8}, "finite"),
        (["--balance", "-1"], {"VIRTUALSMS_API_KEY": "k" * 8}, ">= 0"),
        (["--hold-seconds", "nan"], {"VIRTUALSMS_API_KEY": "k" * 8}, "finite"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, env_extra, message):
    stderr = run_fails(args, clean_env(UNSET_HOOK_VAR="", **env_extra))
    assert len(stderr.strip().splitlines()) == 1
    assert message in stderr


def test_port_in_use_is_a_clean_error():
    key = fake_key("cli-busy")
    with sandbox_process([], clean_env(VIRTUALSMS_API_KEY=key)) as (url, _):
        port = url.rsplit(":", 1)[1]
        stderr = run_fails(["--port", port], clean_env(VIRTUALSMS_API_KEY=key))
    assert "cannot listen" in stderr and key not in stderr


def test_unwritable_key_file_is_a_clean_error(tmp_path):
    stderr = run_fails(["--key-file", str(tmp_path / "missing" / "key")], clean_env())
    assert "cannot write the key file" in stderr


def test_dangling_symlink_key_file_is_named_as_such(tmp_path):
    link = tmp_path / "demo-key"
    link.symlink_to(tmp_path / "gone")
    stderr = run_fails(["--key-file", str(link)], clean_env())
    assert "symbolic link to a missing file" in stderr and "File exists" not in stderr
    assert len(stderr.strip().splitlines()) == 1 and not (tmp_path / "gone").exists()


def test_key_file_helpers_never_overwrite_or_follow(tmp_path):
    """The shared demo-key helpers (``vsms-mcp sandbox`` and ``vsms-mcp --sandbox --http``)."""
    from mcp_server.sandbox.demo_key import read_key_file, write_key_file
    from vsms_guard.errors import GuardError

    key = fake_key("demo-key-file")
    path = tmp_path / "demo-key"
    write_key_file(path, key)
    assert read_key_file(path) == key and stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(GuardError, match="cannot write"):
        write_key_file(path, fake_key("other"))
    assert read_key_file(path) == key
    target = tmp_path / "elsewhere"
    (tmp_path / "link").symlink_to(target)  # dangling: writing would create the target
    with pytest.raises(GuardError, match="cannot write"):
        write_key_file(tmp_path / "link", key)
    assert not target.exists()
