"""stdlib ``logging`` adapter: one ``install()`` that redacts every record any logger handles.

A ``Filter`` on the root handlers misses loggers that do not propagate (uvicorn) and a filter on
each handler misses handlers configured later, so ``install()`` wraps ``Logger.handle``: the one
method every record passes, after ``extra`` is applied and before any handler (Sentry's logging
integration included) sees it. ``RedactingFilter`` is there for whoever prefers to attach it to
chosen handlers by hand.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from vsms_guard.redact.core import REDACTED, Redactor, default_redactor

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
_PLAIN_SIZE = len(logging.makeLogRecord({}).__dict__)
_PRIMITIVES = (int, float, bool, type(None))
_SCALARS = (str, bytes, *_PRIMITIVES)  # cleaned whole by ``Redactor.value``
_CONTAINERS = (dict, list, tuple, set, frozenset)  # walked by it; objects inside are kept
_formatter = logging.Formatter()
_lock = threading.Lock()
_active: Redactor | None = None


def _safe_str(obj: Any) -> str:
    try:
        return str(obj)
    except Exception as exc:  # noqa: BLE001 - a user's __str__ must not break logging
        return f"<unprintable {type(obj).__name__}: {type(exc).__name__}>"


def _redact_arg(redactor: Redactor, arg: Any) -> Any:
    """A ``%``-arg with secrets masked; an object whose ``str()`` holds one becomes that text."""
    if isinstance(arg, str):
        return redactor.text(arg)
    if isinstance(arg, _PRIMITIVES):
        return arg
    if isinstance(arg, bytes | bytearray | dict | list | tuple | set | frozenset):
        return redactor.value(arg)
    text = _safe_str(arg)
    clean = redactor.text(text)
    return arg if clean == text else clean


def _printable(redactor: Redactor, value: Any, clean: Any) -> Any:
    """``clean`` (``value`` through ``Redactor.value``), unless an object that ``value()`` keeps
    as it is (alone or inside a container) prints a secret: then the masked printed text."""
    if clean is value and not isinstance(value, _SCALARS + _CONTAINERS):
        return _redact_arg(redactor, value)  # an object
    if isinstance(clean, _CONTAINERS):
        shown = _safe_str(clean)
        masked = redactor.text(shown)
        return masked if masked != shown else clean
    return clean


def _apply(changes: dict[str, str], text: str) -> str:
    """``text`` with each replaced span of the message replaced in it too."""
    for original, masked in changes.items():
        if original in text:
            text = text.replace(original, masked)
    return text


def _redact_message(record: logging.LogRecord, redactor: Redactor) -> None:
    try:
        message = record.getMessage()
    except Exception as exc:  # noqa: BLE001 - the user's record is kept, not dropped
        shown = f"{_safe_str(record.msg)} [unformattable log arguments: {type(exc).__name__}]"
        record.msg, record.args = redactor.text(shown), ()
        return
    clean, changes = redactor.text_changes(message)
    if not changes:
        return
    if isinstance(record.msg, Mapping) and not record.args:
        # structlog's stdlib bridge logs its event dict as ``msg`` and its formatter needs a
        # dict back: flattened to text, the record would be lost in a "Logging error".
        event = redactor.value(record.msg)  # field names count (api_key=…), SMS fields too
        for name, value in event.items():
            event[name] = _printable(redactor, value, value)
        if redactor.text(str(event)) == str(event):  # else: flattened, as any other record
            record.msg = event
            return
    if record.args and isinstance(record.msg, str):
        # Keep msg and args apart where that gives the same text: some formatters (uvicorn's
        # access log) unpack the args. Otherwise the args' context (e.g. "x-api-key: %s")
        # mattered, and the message is flattened. A str arg gets the masks the message scan
        # found (not a scan of its own): the comparison below proves the result.
        args = record.args
        if isinstance(args, tuple):
            args = tuple(
                _apply(changes, a) if isinstance(a, str) else _redact_arg(redactor, a) for a in args
            )
        else:
            args = redactor.value(args)
        try:
            again = record.msg % args  # a secret in the format string itself makes this differ
        except Exception:  # noqa: BLE001 - fall through to the flattened message
            again = None
        if again == clean:
            record.args = args
            return
    record.msg, record.args = clean, ()


def _redact_exception(record: logging.LogRecord, redactor: Redactor) -> None:
    if record.exc_info and record.exc_info[0] is not None:
        text = record.exc_text or _formatter.formatException(record.exc_info)
        clean = redactor.text(text)
        if clean != text:
            # The traceback object would let a formatter render the secret again.
            record.exc_text, record.exc_info = clean, None
    elif record.exc_text:
        record.exc_text = redactor.text(record.exc_text)
    if record.stack_info:
        record.stack_info = redactor.text(record.stack_info)


def _redact_extra(record: logging.LogRecord, redactor: Redactor) -> None:
    fields = record.__dict__
    if len(fields) <= _PLAIN_SIZE:
        return  # no ``extra`` (the common case, checked cheaply)
    for name in fields.keys() - _STANDARD:
        value = fields[name]
        clean = redactor.value({name: value})[name]  # the field name counts, as in a mapping
        fields[name] = _printable(redactor, value, clean)


def redact_record(record: logging.LogRecord, redactor: Redactor | None = None) -> None:
    """Mask secrets in place in ``record``: message and ``%``-args, exception and stack text,
    ``extra`` fields. A record whose arguments do not format is kept, with a note."""
    redactor = redactor or default_redactor()
    try:
        _redact_message(record, redactor)
        _redact_exception(record, redactor)
        _redact_extra(record, redactor)
    except Exception as exc:  # noqa: BLE001 - never crash logging; never let a secret through
        record.msg = f"{REDACTED} log record (redaction failed: {type(exc).__name__})"
        record.args, record.exc_info, record.exc_text, record.stack_info = (), None, None, None
        for name in record.__dict__.keys() - _STANDARD:  # ``extra`` fields may be unscanned
            record.__dict__[name] = REDACTED


class RedactingFilter(logging.Filter):
    """A filter for chosen handlers; ``install()`` is the broader, one-call alternative."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record, self.redactor)
        return True


def _wrap(original: Any) -> Any:
    """``Logger.handle`` that redacts first; does nothing while no redactor is active."""

    def handle(self: logging.Logger, record: logging.LogRecord) -> Any:
        redactor = _active
        if redactor is not None and not self.disabled:
            redact_record(record, redactor)
        return original(self, record)

    handle.__wrapped__ = original  # type: ignore[attr-defined]
    handle._vsms_guard = True  # type: ignore[attr-defined]
    return handle


def install(
    redactor: Redactor | None = None,
    *,
    secrets: Iterable[str] = (),
    mask_sms: bool | None = None,
) -> Redactor:
    """Redact every record of every logger from now on; returns the redactor in use.

    Idempotent: a second call only swaps the redactor. ``secrets`` are registered on it;
    ``mask_sms=False`` keeps SMS bodies and codes in logs (default: masked).
    """
    global _active
    redactor = redactor or default_redactor()
    for secret in secrets:
        redactor.add_secret(secret)
    if mask_sms is not None:
        redactor.mask_sms = mask_sms
    with _lock:
        _active = redactor
        if not getattr(logging.Logger.handle, "_vsms_guard", False):
            logging.Logger.handle = _wrap(logging.Logger.handle)  # type: ignore[method-assign]
    return redactor


def uninstall() -> None:
    """Undo ``install()`` (tests, or code that wants logging back as it was). If something
    wrapped ``Logger.handle`` after us, our wrapper stays in place, inert."""
    global _active
    with _lock:
        _active = None
        current = logging.Logger.handle
        if getattr(current, "_vsms_guard", False):
            logging.Logger.handle = current.__wrapped__  # type: ignore[attr-defined,method-assign]


def installed() -> Redactor | None:
    """The redactor ``install()`` put in place, if any."""
    return _active
