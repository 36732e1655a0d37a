"""Structured log lines: key=value pairs, with context (delivery, repo, run) bound per task."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import TextIO

# The fields every line carries when they are known, in this order; anything else follows.
CONTEXT_ORDER = (
    "delivery_id",
    "event",
    "action",
    "installation_id",
    "repository",
    "job_id",
    "job_kind",
    "job_origin",
    "run_id",
)

_context: contextvars.ContextVar[Mapping[str, object]] = contextvars.ContextVar(
    "gwi_log_context", default=MappingProxyType({})
)


@contextmanager
def bind(**fields: object) -> Iterator[None]:
    """Add ``fields`` to every line logged inside the block, and in tasks started there.

    asyncio copies the context when it creates a task, so a handler and whatever it spawns
    inherit the delivery id, installation and repository its worker bound. ``None`` values
    are left out.
    """
    merged = {**_context.get(), **{k: v for k, v in fields.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> Mapping[str, object]:
    """The fields bound in this task right now."""
    return _context.get()


class Logger:
    """A thin wrapper over :mod:`logging` whose calls take a message name and fields.

    ``log.info("delivery.accepted", status=202)`` writes one line with the bound context
    and the given fields.
    """

    def __init__(self, name: str) -> None:
        self._logger = logging.getLogger(name)

    def debug(self, msg: str, /, **fields: object) -> None:
        self._log(logging.DEBUG, msg, fields, exc_info=False)

    def info(self, msg: str, /, **fields: object) -> None:
        self._log(logging.INFO, msg, fields, exc_info=False)

    def warning(self, msg: str, /, **fields: object) -> None:
        self._log(logging.WARNING, msg, fields, exc_info=False)

    def error(self, msg: str, /, **fields: object) -> None:
        self._log(logging.ERROR, msg, fields, exc_info=False)

    def exception(self, msg: str, /, **fields: object) -> None:
        """An error line carrying the exception being handled (one line, escaped)."""
        self._log(logging.ERROR, msg, fields, exc_info=True)

    def _log(self, level: int, msg: str, fields: Mapping[str, object], exc_info: bool) -> None:
        logger = self._logger
        if logger.isEnabledFor(level):
            # The record is made here rather than by Logger.log, which would walk the stack
            # for a file and line no line prints. The context is captured now: a handler may
            # format the record later, elsewhere.
            record = logger.makeRecord(
                logger.name,
                level,
                "",
                0,
                msg,
                (),
                sys.exc_info() if exc_info else None,
                extra={"gwi_context": _context.get(), "gwi_fields": dict(fields)},
            )
            logger.handle(record)


def get_logger(name: str) -> Logger:
    return Logger(name)


# Printable ASCII but for space, '"', '=' and backslash: such a value needs no quotes.
_BARE = re.compile(r"[!#-<>-\[\]-~]+")


def format_value(value: object) -> str:
    """A value as it appears after ``key=``: bare when safe, else double-quoted and escaped."""
    text = value if isinstance(value, str) else str(value)
    if _BARE.fullmatch(text):
        return text
    # JSON string syntax: quotes, backslashes and control characters all escaped.
    return json.dumps(text, ensure_ascii=False)


def format_fields(fields: Mapping[str, object]) -> str:
    return " ".join(f"{key}={format_value(value)}" for key, value in fields.items())


class KeyValueFormatter(logging.Formatter):
    """``ts=… level=… logger=… msg=<message> <context fields> <line fields>``, one line each."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        context = getattr(record, "gwi_context", None)
        if not isinstance(context, Mapping):
            context = _context.get()  # a line from another library, formatted as it is logged
        for key in CONTEXT_ORDER:
            if key in context:
                fields[key] = context[key]
        for key, value in context.items():
            fields.setdefault(key, value)
        extra = getattr(record, "gwi_fields", None)
        if isinstance(extra, Mapping):
            for key, value in extra.items():
                fields[str(key)] = value
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            fields["error"] = f"{type(exc).__name__}: {exc}"
            fields["traceback"] = self.formatException(record.exc_info)
        return format_fields(fields)


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send every log line, structured, to ``stream`` (stderr by default) at ``level``.

    Calling it again replaces the handler it installed instead of adding a second one.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "gwi_handler", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    handler.gwi_handler = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # aiohttp's per-request access log repeats what our own lines say; keep its errors.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
