"""Real libraries that leak keys when left alone (FACTS §6), each closed by one adapter call.

A real uvicorn server on 127.0.0.1 (port 0) with its own non-propagating access log, real httpx
and websockets clients at DEBUG, real sentry-sdk with an in-memory transport, real structlog with
dict tracebacks and locals. Each test first shows the leak without the adapter, then its absence.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sentry_sdk
import structlog
import uvicorn
import uvicorn.config
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from websockets.sync.client import connect

from tests.fakes import fake_key
from vsms_guard.redact import Redactor, install, uninstall
from vsms_guard.redact import sentry as redact_sentry
from vsms_guard.redact.structlog import RedactProcessor

KEY = fake_key("integrations")


async def _order(request: Request) -> JSONResponse:
    return JSONResponse({"order_id": request.query_params.get("order_id"), "status": "waiting"})


async def _orders_socket(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json({"type": "sms", "code": "482913", "full_text": "code 482913"})
    await websocket.close()


APP = Starlette(
    routes=[Route("/api/v1/customer/order", _order), WebSocketRoute("/ws/orders", _orders_socket)]
)


@contextlib.contextmanager
def _uvicorn(log_file: Path) -> Iterator[int]:
    """A real uvicorn server, its stock log config pointed at ``log_file``; yields its port."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    for name in ("default", "access"):
        handler = config["handlers"][name]
        handler.pop("stream")
        handler.update({"class": "logging.FileHandler", "filename": str(log_file)})
    server = uvicorn.Server(
        uvicorn.Config(APP, host="127.0.0.1", port=0, log_config=config, access_log=True)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextlib.contextmanager
def _root_capture(*debug_loggers: str) -> Iterator[io.StringIO]:
    """What a root handler receives while the named library loggers run at DEBUG."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    levels = {name: logging.getLogger(name).level for name in debug_loggers}
    for name in debug_loggers:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def _installed(on: bool) -> Iterator[None]:
    if on:
        install(Redactor())
    try:
        yield
    finally:
        if on:
            uninstall()


def _httpx_call(port: int) -> str:
    with _root_capture("httpx", "httpcore") as stream:
        with httpx.Client(headers={"x-api-key": KEY}) as client:
            url = f"http://127.0.0.1:{port}/api/v1/customer/order?order_id=7&api_key={KEY}"
            assert client.get(url).json()["order_id"] == "7"
    return stream.getvalue()


def _websocket_call(port: int) -> str:
    with _root_capture("websockets") as stream:
        url = f"ws://127.0.0.1:{port}/ws/orders?order_id=7&api_key={KEY}"
        with connect(url, additional_headers={"x-api-key": KEY}) as ws:
            assert '"type":"sms"' in ws.recv(timeout=10)
    return stream.getvalue()


@pytest.mark.slow
@pytest.mark.parametrize("on", [False, True], ids=["control", "installed"])
def test_uvicorn_access_log_httpx_and_websockets_at_debug(tmp_path: Path, on: bool) -> None:
    log_file = tmp_path / "uvicorn.log"
    with _installed(on), _uvicorn(log_file) as port:  # uvicorn configures logging after install
        httpx_out = _httpx_call(port)
        ws_out = _websocket_call(port)
    served = log_file.read_text()
    everything = httpx_out + ws_out + served
    # the rest of each line survives: request lines, handshake lines, access lines
    assert "HTTP Request: GET http://127.0.0.1:" in httpx_out
    assert "> GET /ws/orders?order_id=7&api_key=" in ws_out
    assert "GET /api/v1/customer/order?order_id=7&api_key=" in served
    assert '"WebSocket /ws/orders?order_id=7&api_key=' in served
    assert "200" in served
    if on:
        assert KEY not in everything
        assert "> x-api-key: vsms_…[redacted:" in ws_out
        assert "482913" not in ws_out  # the SMS code the socket pushed, logged at DEBUG
    else:
        for out in (httpx_out, ws_out, served):
            assert KEY in out  # FACTS §6: each of these leaks on its own


class _Capture(Transport):
    """Keeps envelopes in memory instead of sending them."""

    def __init__(self) -> None:
        super().__init__()
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)


def _charge(api_key: str, headers: dict[str, str]) -> None:
    url = f"https://virtualsms.io/api/v1/customer/purchase?api_key={api_key}"
    raise ValueError(f"upstream refused {url} for {headers['X-Api-Key']}")


def _sentry_run(hooks: dict[str, Callable[..., Any]]) -> bytes:
    transport = _Capture()
    sentry_sdk.init(
        dsn="https://public@sentry.invalid/1",
        transport=transport,
        traces_sample_rate=1.0,
        include_local_variables=True,
        **hooks,
    )
    try:
        with sentry_sdk.new_scope() as scope:
            scope.set_extra("headers", {"X-Api-Key": KEY, "accept": "json"})
            scope.set_context("call", {"url": f"https://virtualsms.io/?apiKey={KEY}"})
            scope.set_tag("caller", "agent-7")
            scope.add_event_processor(
                lambda event, hint: {
                    **event,
                    "request": {
                        "url": f"https://h/mcp?apiKey={KEY}",
                        "query_string": f"apiKey={KEY}&x=1",
                        "headers": {"X-Api-Key": KEY, "Cookie": "sid=abc"},
                        "data": {"webhook_secret": "whsec_short", "note": f"key {KEY}"},
                    },
                }
            )
            sentry_sdk.add_breadcrumb(
                category="httplib",
                message=f"GET https://virtualsms.io/?api_key={KEY}",
                data={"url": "https://virtualsms.io/", "http.query": f"api_key={KEY}"},
            )
            logging.getLogger("app.sentry").warning("retrying with %s", KEY)  # a breadcrumb
            try:
                _charge(KEY, {"X-Api-Key": KEY})
            except ValueError:
                sentry_sdk.capture_exception()
            sentry_sdk.capture_message(f"plain message with {KEY}")
            with sentry_sdk.start_transaction(name="purchase", op="task"):
                with sentry_sdk.start_span(op="http.client", name=f"GET /x?api_key={KEY}") as span:
                    span.set_data("http.query", f"api_key={KEY}")
        sentry_sdk.flush()
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.init()  # no DSN: the SDK goes quiet again for other tests
    assert len(transport.envelopes) >= 3
    return b"".join(envelope.serialize() for envelope in transport.envelopes)


def test_sentry_events_from_a_real_error() -> None:
    leaked = _sentry_run({})
    assert KEY.encode() in leaked  # Sentry's own scrubber misses these (FACTS §6)
    shipped = _sentry_run(redact_sentry.hooks(Redactor()))
    assert KEY.encode() not in shipped
    assert b"whsec_short" not in shipped and b"sid=abc" not in shipped
    for kept in (b"ValueError", b"upstream refused", b"_charge", b"plain message with", b"agent-7"):
        assert kept in shipped, kept
    assert b'"api_key"' in shipped  # the frame's local variable is there, its value masked


def test_sentry_module_level_hooks_use_the_process_redactor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    odd = "env-secret-of-any-shape"
    monkeypatch.setenv("VIRTUALSMS_API_KEY", odd)
    event = {"message": f"x {odd}", "exception": {"values": [{"value": f"bad {KEY}"}]}}
    clean = redact_sentry.before_send(event, {})
    assert odd not in repr(clean) and KEY not in repr(clean)
    crumb = redact_sentry.before_breadcrumb({"data": {"http.query": f"token={KEY}"}}, {})
    assert KEY not in repr(crumb)
    tx = redact_sentry.before_send_transaction({"spans": [{"description": f"GET /?key={KEY}"}]}, {})
    assert KEY not in repr(tx)


def _structlog_run(processors: list[Any]) -> str:
    out = io.StringIO()
    structlog.configure(
        processors=processors,
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    log = structlog.get_logger()
    try:
        try:
            _charge(KEY, {"X-Api-Key": KEY})
        except ValueError:
            log.exception("charge failed", api_key=KEY, order_id="o-7", code="482913")
        log.info("request sent", url=f"https://virtualsms.io/?api_key={KEY}&x=1")
    finally:
        structlog.reset_defaults()
    return out.getvalue()


def test_structlog_dict_tracebacks_with_locals() -> None:
    dict_tracebacks = structlog.processors.ExceptionRenderer(
        structlog.tracebacks.ExceptionDictTransformer(show_locals=True, use_rich=False)
    )
    render = structlog.processors.JSONRenderer()
    leaked = _structlog_run([dict_tracebacks, render])
    assert KEY in leaked and '"locals"' in leaked
    clean = _structlog_run([dict_tracebacks, RedactProcessor(Redactor()), render])
    assert KEY not in clean and "482913" not in clean
    for kept in ('"locals"', "charge failed", '"order_id": "o-7"', "ValueError", "request sent"):
        assert kept in clean, kept


def test_structlog_processor_placed_before_exception_rendering() -> None:
    """Placed too early, the processor renders ``exc_info`` itself rather than let it leak."""
    render = structlog.processors.JSONRenderer()
    clean = _structlog_run([RedactProcessor(Redactor()), render])
    assert KEY not in clean
    assert "ValueError: upstream refused" in clean
