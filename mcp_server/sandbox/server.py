"""Run the sandbox on a real socket: in a background thread for tests, or in the foreground.

uvicorn's access log is off: it prints query strings, and a careless client may put a key there.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from mcp_server.sandbox.backend import Sandbox

START_TIMEOUT = 10.0


def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening socket; port 0 picks a free one, so the URL is known before serving."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto given explicitly: asyncio sets TCP_NODELAY only on IPPROTO_TCP sockets, and
    # without it every small answer waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def make_server(sb: Sandbox) -> uvicorn.Server:
    config = uvicorn.Config(sb.app, log_level="warning", access_log=False, lifespan="on")
    return uvicorn.Server(config)


@contextmanager
def running_sandbox(**sandbox_kwargs: Any) -> Iterator[tuple[Sandbox, str]]:
    """A ``Sandbox(**sandbox_kwargs)`` served by uvicorn on 127.0.0.1 in a background thread."""
    sb = Sandbox(**sandbox_kwargs)
    sock = bind()
    server = make_server(sb)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="vsms-sandbox", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the sandbox server did not start")
            time.sleep(0.01)
        yield sb, base_url(sock)
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT)
        sock.close()
