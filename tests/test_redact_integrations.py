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
    await websocket.send_json({"type": "sms_received", "code": "7305", "message": "Code 7305"})
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
            assert '"type":"sms_received"' in ws.recv(timeout=10)
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
        assert "7305" not in ws_out  # a push's "message" body too
        assert '"message":"[redacted:sms]"' in ws_out
    else:
        for out in (httpx_out, ws_out, served):
            assert KEY in out  # FACTS §6: each of these leaks on its own
        assert "Code 7305" in ws_out


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


def _structlog_stdlib_run(formatter_processors: list[Any], on: bool) -> tuple[str, str]:
    """structlog's stdlib bridge: events travel as ``record.msg`` dicts to a ProcessorFormatter.
    Returns (what the handler wrote, what logging printed on stderr as errors)."""
    out, errors = io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(processors=formatter_processors))
    log_name = f"bridge.{on}.{len(formatter_processors)}"
    std = logging.getLogger(log_name)
    std.propagate, std.level = False, logging.INFO
    std.addHandler(handler)
    structlog.configure(
        processors=[structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    log = structlog.get_logger(log_name)
    with _installed(on), contextlib.redirect_stderr(errors):
        try:
            log.info("call", api_key=KEY, order_id="o-7")
            try:
                _charge(KEY, {"X-Api-Key": KEY})
            except ValueError:
                log.exception("charge failed", order_id="o-8")
        finally:
            structlog.reset_defaults()
            std.removeHandler(handler)
    return out.getvalue(), errors.getvalue()


def test_structlog_stdlib_bridge_records_survive_install() -> None:
    """``install()`` must hand ProcessorFormatter a dict back: flattened to text, the record
    was lost in a "Logging error" (it was, before the fix)."""
    render = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    render.append(structlog.processors.JSONRenderer())
    leaked, _ = _structlog_stdlib_run(render, on=False)
    assert KEY in leaked
    out, errors = _structlog_stdlib_run(render, on=True)
    assert "Logging error" not in errors
    assert '"event": "call"' in out and '"order_id": "o-7"' in out
    assert '"api_key": "vsms_\\u2026[redacted:' in out
    assert KEY not in out + errors


def test_structlog_stdlib_bridge_with_processor_in_the_formatter() -> None:
    """Exceptions of bridged events are rendered by the formatter, after ``Logger.handle``:
    ``RedactProcessor`` belongs in the formatter's chain, after the exception renderer."""
    dict_tracebacks = structlog.processors.ExceptionRenderer(
        structlog.tracebacks.ExceptionDictTransformer(show_locals=True, use_rich=False)
    )
    meta = structlog.stdlib.ProcessorFormatter.remove_processors_meta
    render = structlog.processors.JSONRenderer()
    leaked, _ = _structlog_stdlib_run([meta, dict_tracebacks, render], on=True)
    assert KEY in leaked  # install() alone cannot see a traceback the formatter renders
    out, errors = _structlog_stdlib_run(
        [meta, dict_tracebacks, RedactProcessor(Redactor()), render], on=True
    )
    assert KEY not in out + errors and "Logging error" not in errors
    for kept in ('"locals"', "charge failed", '"order_id": "o-8"', "upstream refused"):
        assert kept in out, kept


def test_structlog_objects_whose_repr_holds_a_key() -> None:
    """Renderers print objects by ``repr``: an ``httpx.Request`` there carries its URL."""
    out = io.StringIO()
    request = httpx.Request("GET", f"https://virtualsms.io/api/v1/customer/balance?api_key={KEY}")
    for processors in ([], [RedactProcessor(Redactor())]):
        structlog.configure(
            processors=[*processors, structlog.processors.JSONRenderer()],
            logger_factory=structlog.PrintLoggerFactory(out),
            cache_logger_on_first_use=False,
        )
        try:
            structlog.get_logger().info(
                "sending", request=request, attempt=1, batch={"requests": [request]}
            )
        finally:
            structlog.reset_defaults()
    leaked, clean = out.getvalue().splitlines()
    assert KEY in leaked
    assert KEY not in clean
    assert "<Request('GET', 'https://virtualsms.io/api/v1/customer/balance?api_key=" in clean
    assert '"attempt": 1' in clean
    assert "\"batch\": \"{'requests': [<Request('GET', 'https://virtualsms.io/api" in clean


def test_sentry_logging_integration_sees_only_redacted_records() -> None:
    """Sentry's logging integration hooks in below ``Logger.handle``: with ``install()`` and no
    Sentry hooks at all, its events and breadcrumbs carry masked text only."""
    transport = _Capture()
    sentry_sdk.init(dsn="https://public@sentry.invalid/1", transport=transport)
    install(Redactor())
    try:
        with sentry_sdk.isolation_scope() as scope:
            scope.clear_breadcrumbs()  # other tests' control runs left unmasked ones
            log = logging.getLogger("app.sentry-logging")
            log.warning("retrying GET /x?api_key=%s", KEY)  # a breadcrumb
            try:
                _charge(KEY, {"X-Api-Key": KEY})
            except ValueError:
                log.exception("charge failed for %s", KEY)  # an event
        sentry_sdk.flush()
    finally:
        uninstall()
        sentry_sdk.get_client().close()
        sentry_sdk.init()
    shipped = b"".join(envelope.serialize() for envelope in transport.envelopes)
    assert transport.envelopes
    assert KEY.encode() not in shipped
    assert b'"formatted":"charge failed for vsms_\\u2026[redacted:' in shipped  # the event
    assert b'"message":"retrying GET /x?api_key=vsms_\\u2026[redacted:' in shipped  # the crumb


def test_sentry_log_event_params_lose_their_context_so_they_go() -> None:
    """Sentry's logging integration ships ``%`` args apart from the message: the hooks alone
    (no ``install()``) must not leave a header value that only its context marks as secret."""
    shipped = []
    for hooks in ({}, redact_sentry.hooks(Redactor())):
        transport = _Capture()
        sentry_sdk.init(dsn="https://public@sentry.invalid/1", transport=transport, **hooks)
        try:
            logging.getLogger("app.sentry-params").error("> %s: %s", "x-api-key", "short-tok")
            sentry_sdk.flush()
        finally:
            sentry_sdk.get_client().close()
            sentry_sdk.init()
        shipped.append(b"".join(envelope.serialize() for envelope in transport.envelopes))
    leaked, clean = shipped
    assert b"short-tok" in leaked
    assert b"short-tok" not in clean
    assert b'"formatted":"> x-api-key: [redacted]"' in clean
