"""Exact JSON decoding, and a 400 that says where a body stops being JSON and why.

simdjson parses almost every body; this module decodes the few it refuses for a number it
cannot hold (integers past 64 bits, exponents past a float64) and words the refusal of a body
that is not JSON at all: the line and column of the fault, and the usual cause when it is one
of those people meet (``NaN`` or ``Infinity``, a trailing comma, single quotes). The cause is
read from the body at the fault, never from a library's message.
"""

from __future__ import annotations

import json
import re

import orjson

from service.errors import MalformedBody

NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def decode(body: bytes) -> object:
    """Decode JSON into Python objects, as exactly as JSON allows, or raise ``MalformedBody``."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if not is_overflow(body, exc.pos):
            raise MalformedBody(malformed_detail(body, exc)) from None
    return decode_with_infinities(body)


def is_overflow(body: bytes, position: int) -> bool:
    """Tell whether the fault is a well-formed number too large for a float64 (refused later, as 422)."""
    number = NUMBER.match(body.decode("utf-8", "replace"), position)
    return number is not None and abs(float(number.group())) == float("inf")


def decode_with_infinities(body: bytes) -> object:
    """Decode JSON whose numbers overflow a float64 (they become infinities, refused later)."""

    def refuse(constant: str) -> object:
        raise MalformedBody(f"The body is not valid JSON: {constant} is not a JSON value.")

    try:
        document = json.loads(bytes(body).decode("utf-8"), parse_constant=refuse, parse_int=read_integer)
        orjson.dumps(document)  # refuses strings with unpaired surrogates, as orjson.loads does
    except json.JSONDecodeError as exc:
        raise MalformedBody(malformed_detail(body, exc)) from None
    except (ValueError, TypeError, RecursionError) as exc:
        raise MalformedBody(f"The body is not valid JSON: {exc}.") from None
    return document


def read_integer(text: str) -> int | float:
    """Read a JSON integer as orjson does: exact within 64 bits, else the nearest float (or inf)."""
    return int(text) if len(text.lstrip("-")) <= 18 else float(text)


def malformed_detail(body: bytes, error: json.JSONDecodeError) -> str:
    """Say where and why a body is not JSON, without echoing it."""
    text = body.decode("utf-8", "replace")
    if len(text) == 0 or not text.strip():
        return "The body is empty; send a JSON object with 'X_train' and 'y_train'."
    if "surrogate" in error.msg:
        reason = "a string has an unpaired surrogate escape (such as \\ud800)"
    else:
        reason = error.msg.rstrip(".")
    cause = likely_cause(text, error.pos)
    return (
        f"The body is not valid JSON: {reason} at line {error.lineno}, column {error.colno}"
        f"{' (' + cause + ')' if cause else ''}."
    )


def likely_cause(text: str, position: int) -> str:
    """Name the usual mistake found at the fault, if it is one."""
    at = text[position : position + 9]
    before = text[:position].rstrip()
    if at.startswith(("NaN", "Infinity")) or (before.endswith("-") and at.startswith("Infinity")):
        return "NaN and Infinity have no spelling in JSON; every value must be a finite number"
    after = text[position:].lstrip()
    if (at.startswith(",") and after[1:].lstrip()[:1] in ("]", "}")) or (
        before.endswith(",") and after[:1] in ("]", "}")
    ):
        return "a trailing comma: JSON allows no comma after the last element"
    if at.startswith("'"):
        return "single quotes: JSON strings and names take double quotes"
    return ""
