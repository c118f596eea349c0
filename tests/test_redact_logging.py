"""stdlib logging: a matrix of record shapes x sinks, through the real ``logging`` machinery.

Every cell asserts the key is absent and the rest of the message present. A control run without
``install()`` shows the same cell leaking, so none of these tests can pass by accident.
"""

from __future__ import annotations

import io
import json
import logging
import logging.config
import random
from collections.abc import Callable, Iterator

import pytest

from tests.fakes import fake_key
from tests.test_redact_core import _corpus
from vsms_guard.redact import RedactingFilter, Redactor, install, installed, uninstall

KEY = fake_key("logging")
ODD_SECRET = "Tr0ub4dor&3-not-key-shaped"  # a registered exact secret of no particular shape
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class ExtrasFormatter(logging.Formatter):
    """Shows ``extra`` fields too, as JSON formatters (Datadog, ELK) do."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extras = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        return f"{text} {extras!r}" if extras else text


def _chained() -> None:
    try:
        raise KeyError(f"no order for {KEY}")
    except KeyError as exc:
        raise RuntimeError("lookup failed") from exc


# shape name -> (log call on a logger, fragments that must survive)
SHAPES: dict[str, tuple[Callable[[logging.Logger], None], list[str]]] = {
    "f-string": (lambda log: log.info(f"calling with {KEY} now"), ["calling with", "now"]),
    "percent-s": (lambda log: log.info("key %s status %d", KEY, 200), ["key", "status 200"]),
    "percent-d-and-s": (lambda log: log.warning("order %d used %s", 42, KEY), ["order 42 used"]),
    "dict-args": (
        lambda log: log.info("%(who)s sent %(k)s", {"who": "alice", "k": KEY}),
        ["alice sent"],
    ),
    "bytes-arg": (lambda log: log.info("body %r", b"api_key=" + KEY.encode()), ["body b'api_key="]),
    "url-query": (
        lambda log: log.info("GET %s", f"https://virtualsms.io/api?api_key={KEY}&order_id=7"),
        ["GET https://virtualsms.io/api?api_key=", "order_id=7"],
    ),
    "json-escaped": (
        lambda log: log.debug("payload %s", json.dumps({"inner": json.dumps({"x-api-key": KEY})})),
        ['payload {"inner":', "x-api-key"],
    ),
    "header-pair-args": (
        lambda log: log.debug("> %s: %s", "x-api-key", "short-tok"),
        ["> x-api-key:"],
    ),
    "extra-headers": (
        lambda log: log.info("request", extra={"headers": {"x-api-key": KEY, "accept": "json"}}),
        ["request", "'accept': 'json'"],
    ),
    "extra-secret-name": (
        lambda log: log.info("login", extra={"password": "hunter22", "user": "bob"}),
        ["login", "'user': 'bob'"],
    ),
    "exception": (
        lambda log: _log_exception(log, lambda: (_ for _ in ()).throw(ValueError(f"bad {KEY}"))),
        ["failed", "ValueError: bad"],
    ),
    "chained-exception": (
        lambda log: _log_exception(log, _chained),
        ["failed", "KeyError", "direct cause", "RuntimeError: lookup failed"],
    ),
    "stack-info": (lambda log: log.info("here %s", KEY, stack_info=True), ["here", "Stack (most"]),
    "registered-secret": (lambda log: log.info("using %s", ODD_SECRET), ["using"]),
    "unformattable": (lambda log: log.info("%d items for " + KEY, "many"), ["items for"]),
}
SECRETS = {"header-pair-args": "short-tok", "extra-secret-name": "hunter22"}


def _log_exception(log: logging.Logger, fail: Callable[[], object]) -> None:
    try:
        fail()
    except Exception:
        log.exception("failed")


@pytest.fixture
def sink_stream() -> Iterator[io.StringIO]:
    yield io.StringIO()


def _handler(stream: io.StringIO) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(ExtrasFormatter("%(levelname)s %(name)s %(message)s"))
    return handler


class Sinks:
    """Ways a record reaches a handler; each returns the logger to log on."""

    @staticmethod
    def root_child(name: str, stream: io.StringIO) -> logging.Logger:
        handler = _handler(stream)
        logging.getLogger().addHandler(handler)
        Sinks.cleanup.append(lambda: logging.getLogger().removeHandler(handler))
        log = logging.getLogger(f"app.{name}.child.grandchild")
        log.setLevel(logging.DEBUG)
        return log

    @staticmethod
    def non_propagating(name: str, stream: io.StringIO) -> logging.Logger:
        log = logging.getLogger(f"lib.{name}")  # like uvicorn.access: own handler, no root
        log.propagate = False
        log.setLevel(logging.DEBUG)
        log.addHandler(_handler(stream))
        return log

    @staticmethod
    def dict_config_later(name: str, stream: io.StringIO) -> logging.Logger:
        # a library configuring its logging after install(), with a non-propagating logger
        logging.config.dictConfig(
            {
                "version": 1,
                "disable_existing_loggers": False,
                "formatters": {"x": {"()": ExtrasFormatter, "fmt": "%(message)s"}},
                "handlers": {
                    "h": {"class": "logging.StreamHandler", "formatter": "x", "stream": stream}
                },
                "loggers": {f"late.{name}": {"handlers": ["h"], "level": "DEBUG", "propagate": 0}},
            }
        )
        return logging.getLogger(f"late.{name}")

    cleanup: list[Callable[[], None]] = []


SINKS = ["root_child", "non_propagating", "dict_config_later"]


@pytest.fixture
def installed_redactor() -> Iterator[Redactor]:
    redactor = install(Redactor(), secrets=[ODD_SECRET])
    try:
        yield redactor
    finally:
        uninstall()
        for undo in Sinks.cleanup:
            undo()
        Sinks.cleanup.clear()


@pytest.mark.parametrize("sink", SINKS)
@pytest.mark.parametrize("shape", list(SHAPES))
def test_matrix_secret_absent_rest_present(
    installed_redactor: Redactor, shape: str, sink: str, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = io.StringIO()
    log = getattr(Sinks, sink)(f"{shape}-{sink}", stream)
    emit, fragments = SHAPES[shape]
    emit(log)
    out = stream.getvalue()
    secret = SECRETS.get(shape, KEY)
    assert out, "the record was dropped"
    assert secret not in out
    assert ODD_SECRET not in out
    for fragment in fragments:
        assert fragment in out, (fragment, out)
    assert "redacted" in out
    assert "Logging error" not in capsys.readouterr().err  # no traceback dump with the args


@pytest.mark.parametrize("shape", [s for s in SHAPES if s != "unformattable"])
def test_control_without_install_the_same_records_leak(shape: str) -> None:
    stream = io.StringIO()
    log = Sinks.non_propagating(f"control-{shape}", stream)
    SHAPES[shape][0](log)
    assert SECRETS.get(shape, ODD_SECRET if shape == "registered-secret" else KEY) in (
        stream.getvalue()
    )


def test_uvicorn_style_formatters_still_get_their_args(installed_redactor: Redactor) -> None:
    """uvicorn's access formatter unpacks ``record.args``: masking must keep them a 5-tuple."""
    stream = io.StringIO()
    log = Sinks.non_propagating("access-args", stream)
    seen: list[tuple] = []

    class Unpacking(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            client, method, path, version, status = record.args  # type: ignore[misc]
            seen.append((client, method, path, version, status))
            return True

    log.handlers[0].addFilter(Unpacking())
    log.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "GET", f"/mcp?apiKey={KEY}", "1.1", 200)
    assert seen and seen[0][4] == 200 and KEY not in seen[0][2]
    assert KEY not in stream.getvalue() and '"GET /mcp?apiKey=' in stream.getvalue()


def test_install_is_idempotent_and_uninstall_restores() -> None:
    original = logging.Logger.handle
    first = install(Redactor())
    wrapped = logging.Logger.handle
    second = install(Redactor())
    try:
        assert logging.Logger.handle is wrapped  # not wrapped twice
        assert installed() is second is not first
    finally:
        uninstall()
    assert logging.Logger.handle is original
    assert installed() is None


def test_install_options_register_secrets_and_keep_sms() -> None:
    redactor = install(Redactor(), secrets=["another-s3cret"], mask_sms=False)
    try:
        stream = io.StringIO()
        log = Sinks.non_propagating("sms-switch", stream)
        log.info('{"code": "482913"} another-s3cret')
        assert '"code": "482913"' in stream.getvalue()
        assert "another-s3cret" not in stream.getvalue()
        assert redactor.mask_sms is False
    finally:
        uninstall()


def test_redacting_filter_on_one_handler() -> None:
    stream = io.StringIO()
    log = Sinks.non_propagating("filter-only", stream)
    log.handlers[0].addFilter(RedactingFilter(Redactor()))
    log.error("boom %s", KEY)
    assert KEY not in stream.getvalue() and "boom vsms_" in stream.getvalue()


def test_objects_whose_str_fails_or_holds_a_key(installed_redactor: Redactor) -> None:
    class Broken:
        def __str__(self) -> str:
            raise RuntimeError(KEY)

    class Holder:
        def __str__(self) -> str:
            return f"Holder(key={KEY})"

    stream = io.StringIO()
    log = Sinks.non_propagating("odd-objects", stream)
    log.info(Broken())
    log.info("held %s and %s", Holder(), 3)
    out = stream.getvalue()
    assert KEY not in out
    assert "unprintable Broken: RuntimeError" in out
    assert "held Holder(key=vsms_…[redacted:" in out and "]) and 3" in out


def test_when_redaction_itself_fails_extra_fields_are_masked_too() -> None:
    """The fallback keeps the record but must not leave unscanned ``extra`` fields behind."""

    class Failing(Redactor):
        def value(self, obj: object) -> object:
            raise RuntimeError("walker broke")

    install(Failing())
    try:
        stream = io.StringIO()
        log = Sinks.non_propagating("failing-redactor", stream)
        log.info("request", extra={"headers": {"x-api-key": KEY}, "note": "n"})
    finally:
        uninstall()
    out = stream.getvalue()
    assert "[redacted] log record (redaction failed: RuntimeError)" in out
    assert KEY not in out
    assert "'headers': '[redacted]'" in out


@pytest.mark.parametrize("seed", range(3))
def test_args_kept_apart_give_exactly_the_masked_message(seed: int) -> None:
    """Args get the masks found in the whole message; whether they stay args or the message
    is flattened, what a formatter prints equals ``Redactor.text`` of the whole message."""
    rng = random.Random(seed)
    redactor = Redactor(secrets=["s3cret-Value"])
    install(redactor)
    try:
        for line in _corpus(seed, lines=150):
            cuts = sorted(rng.sample(range(len(line) + 1), k=min(3, len(line) + 1)))
            pieces = [line[a:b] for a, b in zip([0, *cuts], [*cuts, len(line)], strict=True)]
            record = logging.makeLogRecord(
                {
                    "name": "args-apart",
                    "msg": "%s" * len(pieces),
                    "args": tuple(pieces),
                    "levelno": logging.INFO,
                }
            )
            logging.getLogger("args-apart").handle(record)
            assert record.getMessage() == redactor.text(line), line
    finally:
        uninstall()


def test_objects_nested_in_extra_fields(installed_redactor: Redactor) -> None:
    """``extra={"ctx": {"request": <object>}}``: formatters print the object inside by repr."""

    class Request:
        def __repr__(self) -> str:
            return f"<Request GET /x?api_key={KEY}>"

    stream = io.StringIO()
    log = Sinks.non_propagating("nested-objects", stream)
    log.info("sending", extra={"ctx": {"request": Request(), "attempt": 2}})
    out = stream.getvalue()
    assert KEY not in out
    assert "<Request GET /x?api_key=vsms_…[redacted:" in out and "'attempt': 2" in out


def test_install_masks_an_unregistered_webhook_secret_by_shape() -> None:
    from tests.test_redact_core import webhook_secret

    secret = webhook_secret(2)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("whsec.probe")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    install(Redactor())
    try:
        logger.info("webhook configured with %s", secret)
    finally:
        uninstall()
        logger.removeHandler(handler)
    assert secret not in stream.getvalue() and "whsec_…[redacted:" in stream.getvalue()
