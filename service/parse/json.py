"""JSON bodies into fields: whole arrays straight into float64, and exact reading where needed.

One road per job. simdjson parses the body once; each matrix field is then exported as a
buffer of doubles, with no Python float in between, when simdjson can vouch for its shape.
A field it cannot vouch for (a null or a string inside, a number out of range, an object
with odd keys, a duplicated key) is decoded and read exactly by ``service.parse.values``,
that field alone. Whatever either reader finds wrong is held until the rules ask for that
field, so that the first failure in the contract's order of fields is the one reported.

simdjson flattens nested arrays when it exports a buffer (``[1, [2]]`` becomes ``1, 2``):
the body's ``[`` are counted, and unless the count equals the arrays the fast reads saw
plus the brackets inside the other fields, the fast reads are redone exactly.

A body simdjson refuses for a number it cannot hold (a 20-digit integer, say) is decoded by
orjson instead; any other refusal is a 400 whose detail gives the line and column.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import simdjson

from service.body import Body
from service.errors import InvalidInput, MalformedBody, describe
from service.parse import syntax
from service.parse.fields import Fields
from service.parse.rules import build_request, refuse_query
from service.parse.shared_parser import PARSER
from service.parse.table_buffers import TABLES, export_table
from service.parse.tables import read_table
from service.parse.values import Matrix, read_matrix, read_vector, within_range
from service.request import Endpoint, FitRequest, TableRequest
from service.settings import Limits
from service.table import Table

#: Fields whose values are arrays of numbers: exported as buffers when simdjson can vouch for them.
ARRAYS = {"X_train": "matrix", "y_train": "matrix", "X_test": "matrix", "sample_weight": "vector"}
OPENING = ord("[")


class Uncertain(Exception):
    """The fast reader cannot vouch for this field: read it exactly."""


class PlainFields(Fields):
    """Fields of a body decoded into Python objects: checked element by element."""

    def __init__(self, document: Mapping[str, object]) -> None:
        self.document = document
        self.drop_missing = document.get("missing") == "drop"

    def names(self) -> list[str]:
        return list(self.document)

    def matrix(self, name: str) -> Matrix:
        return read_matrix(self.document[name], name, self.drop_missing)

    def vector(self, name: str) -> np.ndarray:
        return read_vector(self.document[name], name, self.drop_missing)

    def table(self, name: str) -> Table:
        return read_table(self.document[name], name)

    def value(self, name: str) -> object:
        return self.document[name]


class ParsedFields(Fields):
    """Fields of a body parsed by simdjson, each read fast or exactly, at construction.

    The document may not outlive the construction; the fields hold arrays and plain values
    only. An ``InvalidInput`` found while reading a field is raised when the rules ask for it.
    """

    def __init__(self, document: simdjson.Object, brackets: int) -> None:
        keys = list(document.keys())
        self.order: list[str] = list(dict.fromkeys(keys))
        repeated = len(self.order) != len(keys)
        missing = plain_value(document, "missing") if repeated else document.get("missing")
        self.drop_missing = missing == "drop"
        self.read: dict[str, Matrix | np.ndarray | InvalidInput] = {}
        self.plain: dict[str, object] = {}
        fast: dict[str, Matrix | np.ndarray] = {}
        tables: list[str] = []  # tables whose numeric columns were exported as buffers
        expected = sum(name.count("[") for name in keys)
        for name in self.order:
            value = plain_value(document, name) if repeated or "\0" in name else document[name]
            shape = ARRAYS.get(name)
            if shape is not None and isinstance(value, simdjson.Array | simdjson.Object):
                try:
                    fast[name], arrays = export(value, shape)
                    expected += arrays
                    continue
                except Uncertain:
                    value = value.as_list() if isinstance(value, simdjson.Array) else value.as_dict()
            elif name in TABLES and isinstance(value, simdjson.Object):
                self.plain[name], counted = export_table(value)
                expected += counted
                tables.append(name)
                continue
            elif isinstance(value, simdjson.Array | simdjson.Object):
                value = value.as_list() if isinstance(value, simdjson.Array) else value.as_dict()
            expected += count_brackets(value)
            if shape is None:
                self.plain[name] = value
            else:
                self.read[name] = read_exactly(value, name, shape, self.drop_missing)
        if expected != brackets:
            # An array nested where a number belongs was flattened by an export: read those fields exactly.
            for name in fast:
                value = plain_value(document, name)
                self.read[name] = read_exactly(value, name, ARRAYS[name], self.drop_missing)
            for name in tables:
                self.plain[name] = plain_value(document, name)
        else:
            self.read.update(fast)

    def names(self) -> list[str]:
        return self.order

    def matrix(self, name: str) -> Matrix:
        read = self.read[name] if name in self.read else read_exactly(self.plain[name], name, "matrix", False)
        if isinstance(read, InvalidInput):
            raise read
        assert isinstance(read, Matrix)
        return read

    def vector(self, name: str) -> np.ndarray:
        read = self.read[name] if name in self.read else read_exactly(self.plain[name], name, "vector", False)
        if isinstance(read, InvalidInput):
            raise read
        assert isinstance(read, np.ndarray)
        return read

    def table(self, name: str) -> Table:
        return read_table(self.plain[name], name)

    def value(self, name: str) -> object:
        return self.plain[name] if name in self.plain else None


def plain_value(document: simdjson.Object, name: str) -> object:
    """The last value of a key, decoded into Python objects (as orjson would keep it)."""
    value: object = None
    for key, item in document.items():
        if key == name:
            value = item
    return value


def read_exactly(value: object, name: str, shape: str, missing: bool) -> Matrix | np.ndarray | InvalidInput:
    """Read a decoded field with the exact reader; an error is returned, to be raised in order."""
    try:
        return read_matrix(value, name, missing) if shape == "matrix" else read_vector(value, name, missing)
    except InvalidInput as error:
        return error


def export(value: simdjson.Array | simdjson.Object, shape: str) -> tuple[Matrix | np.ndarray, int]:
    """Export a field as float64, with the number of arrays it holds; ``Uncertain`` if it cannot vouch."""
    if isinstance(value, simdjson.Object):
        if shape != "matrix":
            raise Uncertain
        names = tuple(value.keys())
        if not names or len(set(names)) != len(names) or any("\0" in n for n in names):
            raise Uncertain
        columns = []
        for column in names:
            array = value[column]
            if not isinstance(array, simdjson.Array):
                raise Uncertain
            columns.append(buffer(array, len(array)))
        if len({len(c) for c in columns}) != 1 or len(columns[0]) == 0:
            raise Uncertain
        return Matrix(np.column_stack(columns), names), len(columns)
    rows = len(value)
    if rows == 0:
        raise Uncertain
    first = value[0]
    if shape == "matrix" and isinstance(first, simdjson.Array):
        width = len(first)
        if width == 0:
            raise Uncertain
        for row in value:
            if type(row) is not simdjson.Array or len(row) != width:
                raise Uncertain
        return Matrix(buffer(value, rows * width).reshape(rows, width)), 1 + rows
    if isinstance(first, float | int) and not isinstance(first, bool):
        values = buffer(value, rows)
        return (Matrix(values.reshape(rows, 1), flat=True) if shape == "matrix" else values), 1
    raise Uncertain


def buffer(array: simdjson.Array, size: int) -> np.ndarray:
    """The numbers of an array (flattened) as float64, if there are ``size`` of them, all in range."""
    try:
        values = np.frombuffer(array.as_buffer(of_type="d"), dtype=np.float64)
    except (TypeError, ValueError):
        raise Uncertain from None
    if values.size != size or not within_range(values):
        raise Uncertain
    return values


def count_brackets(value: object) -> int:
    """Count the ``[`` a decoded value needs in JSON text: its lists and those in its strings.

    Iterative, so that a deeply nested value cannot exhaust the stack.
    """
    count = 0
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, list):
            count += 1
            pending.extend(item)
        elif isinstance(item, dict):
            count += sum(key.count("[") for key in item)
            pending.extend(item.values())
        elif isinstance(item, str):
            count += item.count("[")
    return count


def parse_json(
    body: Body | bytes, endpoint: Endpoint, limits: Limits, params: Mapping[str, object] | None = None
) -> FitRequest | TableRequest:
    """Parse and check a JSON body (``params``: the query string's, refused)."""
    data = body.take() if isinstance(body, Body) else body
    if len(data) == 0:
        raise MalformedBody("The body is empty; send a JSON object with 'X_train' and 'y_train'.")
    brackets = count_byte(data, OPENING)
    if b"\\" in data and b"\\u005" in data:  # a single byte is found at memchr's speed, five are not
        # A [ written as an escape is one the readers count but the bytes hide. An escaped
        # backslash before "u005b" is counted too: that only sends the body to the exact reader.
        brackets += data.count(b"\\u005b") + data.count(b"\\u005B")
    fields: Fields
    with PARSER.parse(data) as document:
        if isinstance(document, Exception):
            fields = PlainFields(decode_exactly(data, document))
        else:
            del data  # simdjson holds its own copy
            if not isinstance(document, simdjson.Object):
                raise InvalidInput(f"The body must be a JSON object. Got {json_kind(document)} instead.")
            fields = ParsedFields(document, brackets)
        del document
    refuse_query(params or {})
    return build_request(fields, endpoint, limits)


def count_byte(data: bytes, byte: int, block: int = 2**18) -> int:
    """How many times ``byte`` occurs in ``data``: numpy, a block at a time.

    Three to six times faster than ``bytes.count`` on a large body, and the comparison's
    scratch array stays one block (256 KiB), however large the body.
    """
    view = np.frombuffer(data, dtype=np.uint8)
    scratch = np.empty(min(block, view.size), dtype=bool)
    count = 0
    for start in range(0, view.size, block):
        part = view[start : start + block]
        found = scratch[: part.size]
        np.equal(part, byte, out=found)
        count += int(np.count_nonzero(found))
    return count


def decode_exactly(body: bytes, refusal: Exception) -> dict[str, object]:
    """Decode a body simdjson refused, if only for a number it cannot hold; else ``MalformedBody``."""
    if isinstance(refusal, UnicodeDecodeError) or "UTF8" in str(refusal):
        raise MalformedBody("The body is not valid UTF-8; send JSON text encoded as UTF-8.")
    document = syntax.decode(body)
    if not isinstance(document, dict):
        raise InvalidInput(f"The body must be a JSON object. Got {json_kind(document)} instead.")
    return document


def json_kind(value: object) -> str:
    """Name the kind of a JSON value."""
    if isinstance(value, simdjson.Array):
        return "a list"
    return describe(value)
