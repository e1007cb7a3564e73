"""CSV and multipart bodies into the table form, for curl users.

A ``text/csv`` body is the training table (``train``), header row first, and the options
are query parameters. A ``multipart/form-data`` body has the parts ``train`` and ``test``
(CSV tables) and text fields for the options; the query string may carry options too, but
no option twice. The tables are read by ``service.parse.csv``; the fields are offered to
``rules.build_request`` as ``FormFields``, so every rule and message of the JSON table form
applies unchanged: a problem with a parameter names that parameter, a problem with a cell
names ``train`` or ``test``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from service.errors import InvalidInput, MalformedBody, did_you_mean, excerpt
from service.parse.csv import DECIMAL, read_csv
from service.parse.fields import Fields
from service.parse.rules import build_request
from service.request import Endpoint, FitRequest, TableRequest
from service.settings import Limits
from service.table import Table

PARAMETERS = (
    "formula", "target", "weight", "by", "fit_intercept", "positive", "statistics", "interval", "level", "missing",
    "cov_type", "anova",
)  # fmt: skip
PARTS = ("train", "test", *PARAMETERS)
FLAGS = ("fit_intercept", "positive", "statistics", "anova")
TRUTH = {"true": True, "1": True, "false": False, "0": False}

Params = Mapping[str, "str | list[str]"]
Part = tuple["str | None", bytes]


class FormFields(Fields):
    """The fields of the table form, from CSV tables and text options."""

    def __init__(self, tables: dict[str, Table], options: dict[str, str]) -> None:
        self.tables = tables
        self.options = options

    def names(self) -> list[str]:
        return [*self.tables, *self.options]

    def table(self, name: str) -> Table:
        return self.tables[name]

    def value(self, name: str) -> object:
        return read_option(name, self.options[name])


def parse_csv(body: bytes, params: Params, endpoint: Endpoint, limits: Limits) -> FitRequest | TableRequest:
    """Parse and check a ``text/csv`` body (the training table) and its query parameters."""
    if blank(body):
        raise MalformedBody("The body is empty; send the training table as CSV text, header row first.")
    options = read_params(params)
    if endpoint == "predict":
        raise InvalidInput(
            "A text/csv body is the training table alone, so it has no 'test', which /predict requires; "
            "send both tables as multipart/form-data (curl -F train=@train.csv -F test=@test.csv), "
            "or use /fit to fit without predicting.",
            "test",
        )
    return build_request(FormFields({"train": read_csv(body, "train")}, options), endpoint, limits)


def parse_form(parts: Sequence[Part], params: Params, endpoint: Endpoint, limits: Limits) -> FitRequest | TableRequest:
    """Parse and check the parts of a ``multipart/form-data`` body and its query parameters."""
    options = read_params(params)
    tables: dict[str, bytes] = {}
    given: set[str] = set()
    for name, data in parts:
        if name is None or name not in PARTS:
            raise InvalidInput(unknown_detail("part", name, PARTS), excerpt(name) if name else None)
        if name in given or name in options:
            place = "twice in the form" if name in given else "both in the form and in the query string"
            raise InvalidInput(f"{name!r} is given {place}; give it once.", name)
        given.add(name)
        if name in PARAMETERS:
            options[name] = decode(data, f"The field {name!r}").strip()
        else:
            tables[name] = data
    if "train" not in tables:
        raise InvalidInput(
            "The multipart body has no 'train' part, the training table; send one (curl -F train=@train.csv).",
            "train",
        )
    if endpoint == "predict" and "test" not in tables:
        raise InvalidInput(
            "The multipart body has no 'test' part, the table of rows to predict, which /predict requires "
            "(curl -F test=@test.csv); use /fit to fit without predicting.",
            "test",
        )
    for name, data in tables.items():
        if blank(data):
            raise InvalidInput(f"{name!r}, the {name!r} part, is empty; send a CSV table, header row first.", name)
    read: dict[str, Table] = {name: read_csv(tables[name], name) for name in ("train", "test") if name in tables}
    return build_request(FormFields(read, options), endpoint, limits)


def blank(data: bytes) -> bool:
    """Whether ``data`` is empty or only whitespace, found without copying it (``strip`` would)."""
    return not data or data.isspace()


def decode(data: bytes, what: str) -> str:
    """Decode UTF-8 text (an optional byte order mark dropped), or raise ``MalformedBody``."""
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        raise MalformedBody(f"{what} is not valid UTF-8; send text encoded as UTF-8.") from None


def read_params(params: Params) -> dict[str, str]:
    """Check the query parameters: known names, each once."""
    options = {}
    for name, value in params.items():
        if name not in PARAMETERS:
            raise InvalidInput(unknown_detail("query parameter", name, PARAMETERS), excerpt(name))
        if isinstance(value, list):
            raise InvalidInput(
                f"The query parameter {name!r} is given {len(value)} times; give it once "
                "(several targets go in one value, comma-separated).",
                name,
            )
        options[name] = value
    return options


def unknown_detail(kind: str, name: str | None, known: Sequence[str]) -> str:
    """Say that a parameter or part is unknown, suggesting the closest known one."""
    if not name:
        return f"A part of the form has no name; the parts are: {', '.join(known)}."
    return f"{excerpt(name)!r} is not a {kind} of this API.{did_you_mean(name, known)} The {kind}s are: {', '.join(known)}."


def read_option(name: str, text: str) -> object:
    """Turn an option's text into the value JSON would carry; leave text it cannot be as it is."""
    text = text.strip()
    if name in FLAGS:
        return TRUTH.get(text.lower(), text)
    if name == "level" and re.fullmatch(DECIMAL, text):
        return float(text)
    return text
