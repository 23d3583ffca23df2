"""Structured JSON logs with a correlation id per request; nothing secret is ever formatted into them."""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import sys

from idp.settings import LoggingSettings

correlation_id: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id", default="")

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, correlation id and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if cid := correlation_id.get():
            entry["correlation_id"] = cid
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(settings: LoggingSettings) -> None:
    """Send the ``idp`` loggers to standard error, as JSON unless told otherwise (once per process)."""
    root = logging.getLogger("idp")
    if getattr(root, "_idp_configured", False):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.json else logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root.addHandler(handler)
    root.setLevel(settings.level.upper())
    root.propagate = False
    root._idp_configured = True  # type: ignore[attr-defined]
