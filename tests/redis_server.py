"""A throw-away redis-server on a free 127.0.0.1 port, for the replay-store tests and bench."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(workdir: Path, attempts: int = 5) -> tuple[subprocess.Popen[bytes], str] | None:
    """``(process, url)`` of a running server with no persistence; None without the binary.
    A port taken between choosing and binding gets another try; RuntimeError if none starts."""
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    import redis

    for _attempt in range(attempts):
        port = _free_port()
        proc = subprocess.Popen(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(host="127.0.0.1", port=port)
        for _ in range(200):
            if proc.poll() is not None:
                break
            try:
                client.ping()
            except redis.ConnectionError:
                time.sleep(0.025)
                continue
            client.close()
            return proc, f"redis://127.0.0.1:{port}/0"
        proc.kill()
        proc.wait(10)
    raise RuntimeError("redis-server did not start")


def stop_redis(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(10)
