"""Errors of fitserve and their problem+json form (RFC 9457).

The pure stages (parsing, fitting, rendering) raise these; ``app.py`` turns every
one of them, and every other failure, into an ``application/problem+json`` answer::

    FitserveError                 status  when
    ├── MalformedBody             400     the body cannot be parsed at all
    ├── NotAcceptable             406     ``Accept`` lists only types the endpoint cannot give
    ├── BodyTooLarge              413     the body is larger than the configured limit
    ├── UnsupportedMediaType      415     a content type the endpoint does not take
    └── InvalidInput              422     parseable, but a field breaks a rule (``field`` names it)
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import ClassVar

import orjson

PROBLEM_JSON = "application/problem+json"

TITLES: dict[int, str] = {
    400: "Malformed body",
    401: "Unauthorized",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    413: "Body too large",
    415: "Unsupported media type",
    422: "Invalid input",
    500: "Internal server error",
    503: "Service unavailable",
}


class FitserveError(Exception):
    """Base of every error a request can cause; carries its HTTP status."""

    status: ClassVar[int] = 500

    def __init__(self, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class MalformedBody(FitserveError):
    """The body is not parseable (bad JSON, CSV or multipart, empty, bad UTF-8)."""

    status = 400


class NotAcceptable(FitserveError):
    """The ``Accept`` header lists only media types this answer cannot be given in."""

    status = 406


class BodyTooLarge(FitserveError):
    """The body is larger than the configured limit."""

    status = 413


class UnsupportedMediaType(FitserveError):
    """The endpoint does not take the body's content type."""

    status = 415


class InvalidInput(FitserveError):
    """The body parsed, but a field is missing, unknown or breaks a rule."""

    status = 422


def render_problem(status: int, detail: str, field: str | None = None, request_id: str | None = None) -> bytes:
    """Serialize one problem+json document (with the request's id, when given)."""
    problem: dict[str, object] = {
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if field is not None:
        problem["field"] = field
    if request_id is not None:
        problem["request_id"] = request_id
    return orjson.dumps(problem, option=orjson.OPT_APPEND_NEWLINE)


def excerpt(text: str, limit: int = 40) -> str:
    """Cut a name or a value to a short excerpt for a message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe(value: object) -> str:
    """Name what arrived, briefly, for a message: never more than a short excerpt."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, str):
        return "the string " + orjson.dumps(excerpt(value, 20)).decode()
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, int) and abs(value) < 10**20 else f"{float(value):.6g}"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "a " + type(value).__name__


#: Names longer than this get no "did you mean": comparing them costs time quadratic in their length.
SUGGEST_UP_TO = 64


def did_you_mean(name: str, known: Sequence[str]) -> str:
    """`` Did you mean 'X_test'?`` for a misspelt name, or nothing; bounded work for any name."""
    if len(name) > SUGGEST_UP_TO:
        return ""
    close = difflib.get_close_matches(name, known, n=1)
    return f" Did you mean {close[0]!r}?" if close else ""
