"""``--verify`` against a real HTTP server on 127.0.0.1 standing in for the VirtualSMS API."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from scanners.verify import check_base_url, verify_keys
from tests.fakes import fake_key
from vsms_guard import keys
from vsms_guard.errors import GuardError

CLI = [str(Path(sys.executable).with_name("vsms-guard"))]
LIVE, REVOKED, FLAKY = fake_key("live"), fake_key("revoked"), fake_key("flaky")


class StandIn(BaseHTTPRequestHandler):
    """Answers the balance call like VirtualSMS: 200 for a live key, 401 for a revoked one."""

    seen: list[tuple[str, str, str | None]] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        key = self.headers.get("X-API-Key")
        StandIn.seen.append(("GET", self.path, key))
        status = {LIVE: 200, REVOKED: 401}.get(key or "", 503)
        if self.path != "/api/v1/customer/balance":
            status = 404
        body = json.dumps({"balance_usd": 12.5} if status == 200 else {"error": "no"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api() -> Iterator[str]:
    StandIn.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_verify_labels_live_and_revoked_keys(api: str) -> None:
    verdicts = verify_keys([LIVE, REVOKED, FLAKY, LIVE], api)
    assert verdicts == {
        keys.fingerprint(LIVE): "live",
        keys.fingerprint(REVOKED): "revoked",
        keys.fingerprint(FLAKY): "unknown (HTTP 503)",
    }
    # each distinct key sent once, only in the header, only to the balance call
    assert StandIn.seen == [
        ("GET", "/api/v1/customer/balance", LIVE),
        ("GET", "/api/v1/customer/balance", REVOKED),
        ("GET", "/api/v1/customer/balance", FLAKY),
    ]


def test_cli_verify_labels_findings_without_showing_keys(api: str, tmp_path: Path) -> None:
    (tmp_path / "a.env").write_text(f"KEY={LIVE}\nOLD={REVOKED}\n")
    done = subprocess.run(
        [*CLI, "scan", str(tmp_path), "--verify", "--base-url", api, "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    body = json.loads(done.stdout)
    labels = {f["line"]: f["properties"]["verified"] for f in body["findings"]}
    assert labels == {1: "live", 2: "revoked"}
    assert "verify: live" in body["findings"][0]["message"]
    assert LIVE not in done.stdout + done.stderr and REVOKED not in done.stdout + done.stderr


def test_without_verify_nothing_is_sent(api: str, tmp_path: Path) -> None:
    (tmp_path / "a.env").write_text(f"KEY={LIVE}\n")
    env_run = subprocess.run(
        [*CLI, "scan", str(tmp_path), "--base-url", api], capture_output=True, check=False
    )
    assert env_run.returncode == 1
    assert StandIn.seen == []


def test_unreachable_api_is_labelled_unknown(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    verdicts = verify_keys([LIVE], f"http://127.0.0.1:{port}", timeout=2)
    assert verdicts[keys.fingerprint(LIVE)].startswith("unknown (")


@pytest.mark.parametrize(
    "url",
    ["http://virtualsms.io", "ftp://127.0.0.1", "https://user:pw@virtualsms.io", "nonsense"],
)
def test_unsafe_base_urls_are_refused(url: str, tmp_path: Path) -> None:
    with pytest.raises(GuardError):
        check_base_url(url)
    done = subprocess.run(
        [*CLI, "scan", str(tmp_path), "--verify", "--base-url", url],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1


def test_https_and_loopback_http_are_allowed() -> None:
    assert (
        check_base_url("https://virtualsms.io/") == "https://virtualsms.io/api/v1/customer/balance"
    )
    assert check_base_url("http://localhost:8080").endswith("/api/v1/customer/balance")


def test_scanned_project_cannot_choose_where_keys_are_sent(tmp_path: Path) -> None:
    """A repository's own config (e.g. in a hostile pull request) must not redirect --verify."""
    (tmp_path / ".vsms-guard.toml").write_text('[scan]\nbase_url = "http://127.0.0.1:9"\n')
    done = subprocess.run(
        [*CLI, "scan", str(tmp_path), "--verify"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert "base_url is not read from project config" in done.stderr
    assert done.stderr.count("\n") == 1
