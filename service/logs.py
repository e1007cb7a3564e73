"""Log lines of fitserve on standard error: plain text, or one JSON object per line.

Every line goes through the ``fitserve`` logger or a child of it (``fitserve.access``
for the access log). An access record carries its fields in ``record.access`` (a dict,
see ``service.observability``); the text form writes them as ``key=value`` pairs, the
JSON form as keys of the line's object. Nothing here imports the app or numpy: the
parent of the worker processes configures its logging with it too.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime, timezone
from typing import TextIO

import orjson

TEXT_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


def configure_logging(log_format: str = "text", stream: TextIO | None = None) -> None:
    """Send INFO and above to standard error (or ``stream``), as text or as JSON lines."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JSONFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    # The basicConfig() this replaces also did nothing when the root logger had a handler already
    # (an embedding program's, or pytest's): theirs stay in charge.
    if not root.handlers:
        root.addHandler(handler)
        root.setLevel(logging.INFO)


def format_fields(fields: dict[str, object]) -> str:
    """Write access-log fields as ``key=value`` pairs; text values are escaped so a line stays one line."""
    return " ".join(f"{key}={text_value(value)}" for key, value in fields.items())


def text_value(value: object) -> str:
    """One value of a text line: numbers as they are, ``-`` for none, text quoted when it needs to be."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value)
    if text and all(33 <= ord(c) <= 126 and c not in '"\\' for c in text):
        return text
    return orjson.dumps(text).decode()  # control characters, spaces, quotes and non-ASCII escaped


class JSONFormatter(logging.Formatter):
    """Format each record as one JSON object: time, level, logger, message, and the access fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
        }
        access = getattr(record, "access", None)
        if isinstance(access, dict):
            line.update(access)
        else:
            line["message"] = record.getMessage()
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()
