"""The one way this package serves an ASGI app with uvicorn: the MCP HTTP front and the sandbox.

We bind the listening socket ourselves, so a busy port or a bad host is a one-line error before
anything starts, and ``--port 0`` knows its real port up front. uvicorn's access log is off (it
prints query strings, where a careless client may put a key) and its own log configuration is
skipped, so its records reach the root handlers and pass the redactor.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

START_TIMEOUT = 10.0


def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket; port 0 picks a free one. OSError when the address is unusable."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP;
    # with proto 0 every small keep-alive answer waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def base_url(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket (IPv6 hosts in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def uvicorn_server(app: ASGIApp, log_level: str = "info") -> uvicorn.Server:
    """uvicorn for ``app`` on a socket we pass in: no access log, no log config of its own."""
    config = uvicorn.Config(
        app, access_log=False, log_config=None, log_level=log_level, lifespan="on"
    )
    return uvicorn.Server(config)


def serve_forever(app: ASGIApp, sock: socket.socket) -> None:
    """Serve ``app`` on ``sock`` in the foreground until Ctrl-C or SIGTERM."""
    uvicorn_server(app).run(sockets=[sock])


@contextmanager
def serving(app: ASGIApp) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1, a free port, in a background thread; yields its base URL."""
    sock = bind()
    server = uvicorn_server(app, log_level="warning")
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="vsms-uvicorn", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the HTTP server did not start")
            time.sleep(0.01)
        yield base_url(sock)
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT)
        sock.close()
