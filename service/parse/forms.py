"""CSV tables and multipart forms into a ``FitRequest``, for curl users.

A ``text/csv`` body is the training table, header row first. A ``multipart/form-data``
body has a ``train`` part (that table), a ``test`` part (a table of the feature columns)
and text fields. Query parameters, or form fields, name the target columns (``target``,
comma-separated, default the last column) and the weight column (``weight``), and carry
the options. The tables are offered to ``rules.build_request`` as ``Fields``, so every
rule and message of the JSON path applies unchanged; the tables' own problems name the
field of the contract the cells were going to (``X_train``, ``y_train``,
``sample_weight``, ``X_test``), and a problem with a parameter names that parameter.

Cells are decimal numbers only (``12``, ``-0.5``, ``1.5e3``, quoted or not): no spaces,
digit separators, NaN or infinity, and no empty cells. Data rows are counted from 1
below the header. A table is checked in one vectorized pass; only a table with a bad
cell is read again, cell by cell, to say which one.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from service.errors import InvalidInput, MalformedBody, describe, did_you_mean, excerpt
from service.parse.fields import Fields
from service.parse.rules import build_request
from service.parse.values import MAX_MAGNITUDE, Matrix, plural, within_range
from service.request import Endpoint, FitRequest, TableRequest
from service.settings import Limits

PARAMETERS = ("target", "weight", "fit_intercept", "positive", "statistics", "interval", "level")
PARTS = ("train", "test", *PARAMETERS)
FLAGS = ("fit_intercept", "positive", "statistics")
TRUTH = {"true": True, "1": True, "false": False, "0": False}
DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
#: A character that no decimal number has, in a cell or in a plain table's lines.
FOREIGN_CELL = re.compile(r"[^0-9eE.+\-]")
FOREIGN_LINE = re.compile(r"[^0-9eE.+\-,\n]")
ROWS = "data rows count from 1 below the header"

Params = Mapping[str, "str | list[str]"]
Part = tuple["str | None", bytes]


@dataclass(frozen=True)
class Table:
    """A CSV table: its column names, and its cells as float64 where they are numbers."""

    role: str  # "training" or "test", for messages
    names: tuple[str, ...]
    values: np.ndarray  # (n, w); a column with a problem holds no meaningful values
    problems: dict[int, tuple[int, str]]  # column -> (its first bad data row, from 0; the cell)

    def columns(self, indices: Sequence[int], field: str) -> np.ndarray:
        """The values of some columns, or ``InvalidInput`` for the first bad cell among them."""
        bad = [(self.problems[j][0], k, j) for k, j in enumerate(indices) if j in self.problems]
        if bad:
            row, _, j = min(bad)
            raise cell_error(field, self, row, j, self.problems[j][1])
        return np.ascontiguousarray(self.values[:, list(indices)])


@dataclass(frozen=True)
class Layout:
    """Which columns of the training table are features, targets and the weight."""

    features: list[int]
    targets: list[int]
    weight: int | None


def parse_csv(body: bytes, params: Params, endpoint: Endpoint, limits: Limits) -> FitRequest | TableRequest:
    """Parse and check a ``text/csv`` body (the training table) and its query parameters."""
    text = decode(body, "The body")
    if not text.strip():
        raise MalformedBody("The body is empty; send the training table as CSV text, header row first.")
    settings = read_params(params)
    if endpoint == "predict":
        raise InvalidInput(
            "A text/csv body is the training table alone, so it has no 'X_test', which /predict requires; "
            "send both tables as multipart/form-data (curl -F train=@train.csv -F test=@test.csv), "
            "or use /fit to fit without predicting.",
            "X_test",
        )
    train = read_table(text, "training", "X_train")
    return build_from_tables(train, None, settings, endpoint, limits)


def parse_form(parts: Sequence[Part], params: Params, endpoint: Endpoint, limits: Limits) -> FitRequest | TableRequest:
    """Parse and check the parts of a ``multipart/form-data`` body and its query parameters."""
    texts = [(name, decode(data, f"The part {excerpt(name or '')!r}")) for name, data in parts]
    settings = read_params(params)
    given: dict[str, str] = {}
    for name, text in texts:
        if name is None or name not in PARTS:
            raise InvalidInput(unknown_detail("part", name, PARTS), excerpt(name) if name else None)
        if name in given or name in settings:
            place = "twice in the form" if name in given else "both in the form and in the query string"
            raise InvalidInput(f"{name!r} is given {place}; give it once.", name)
        given[name] = text
    if "train" not in given:
        raise InvalidInput(
            "The multipart body has no 'train' part, the training table ('X_train' and 'y_train'); "
            "send one (curl -F train=@train.csv).",
            "X_train",
        )
    if endpoint == "predict" and "test" not in given:
        raise InvalidInput(
            "The multipart body has no 'test' part, the table of feature columns to predict ('X_test'), "
            "which /predict requires (curl -F test=@test.csv); use /fit to fit without predicting.",
            "X_test",
        )
    for name in PARAMETERS:
        if name in given:
            settings[name] = given[name].strip()
    for name, field in (("train", "X_train"), ("test", "X_test")):
        if name in given and not given[name].strip():
            raise InvalidInput(
                f"{field!r}, the {name!r} part, is empty; send a CSV table, header row first.", field
            )
    train = read_table(given["train"], "training", "X_train")
    return build_from_tables(train, given.get("test"), settings, endpoint, limits)


def build_from_tables(
    train: Table, test: str | None, settings: dict[str, str], endpoint: Endpoint, limits: Limits
) -> FitRequest | TableRequest:
    """Lay out the training table, read the options, and check it all as the JSON path does."""
    layout = lay_out(train, settings.pop("target", None), settings.pop("weight", None))
    options = {name: read_option(name, text) for name, text in settings.items()}
    return build_request(TableFields(train, layout, test, options), endpoint, limits)


class TableFields(Fields):
    """The fields of the contract, read from CSV tables and text options."""

    def __init__(self, train: Table, layout: Layout, test: str | None, options: dict[str, object]) -> None:
        self.train = train
        self.layout = layout
        self.test = test
        self.options = options

    def names(self) -> list[str]:
        names = ["X_train", "y_train"]
        if self.test is not None:
            names.append("X_test")
        if self.layout.weight is not None:
            names.append("sample_weight")
        return names + list(self.options)

    def matrix(self, name: str) -> Matrix:
        train, layout = self.train, self.layout
        if name == "X_train":
            return Matrix(
                train.columns(layout.features, name), tuple(train.names[j] for j in layout.features)
            )
        if name == "y_train":
            return Matrix(train.columns(layout.targets, name), tuple(train.names[j] for j in layout.targets))
        assert name == "X_test" and self.test is not None
        test = read_table(self.test, "test", name)
        return Matrix(test.columns(range(len(test.names)), name), test.names)

    def vector(self, name: str) -> np.ndarray:
        assert name == "sample_weight" and self.layout.weight is not None
        j = self.layout.weight
        weights = self.train.columns([j], name)[:, 0]
        if weights.min() < 0:
            row = int(np.argmax(weights < 0))
            raise InvalidInput(
                f"'sample_weight' has {weights[row]:.6g} at {where(self.train, row, j)}; weights must be >= 0.",
                name,
            )
        return weights

    def value(self, name: str) -> object:
        return self.options[name]


def decode(data: bytes, what: str) -> str:
    """Decode UTF-8 text (an optional byte order mark dropped), or raise ``MalformedBody``."""
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        raise MalformedBody(f"{what} is not valid UTF-8; send text encoded as UTF-8.") from None


def read_params(params: Params) -> dict[str, str]:
    """Check the query parameters: known names, each once."""
    settings = {}
    for name, value in params.items():
        if name not in PARAMETERS:
            raise InvalidInput(unknown_detail("query parameter", name, PARAMETERS), excerpt(name))
        if isinstance(value, list):
            raise InvalidInput(
                f"The query parameter {name!r} is given {len(value)} times; give it once "
                "(several targets go in one value, comma-separated).",
                name,
            )
        settings[name] = value
    return settings


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
    if name == "level" and DECIMAL.fullmatch(text):
        return float(text)
    return text


def lay_out(train: Table, target: str | None, weight: str | None) -> Layout:
    """Find the target and weight columns; the others are the features, in the table's order."""
    names = train.names
    weight_index = None if weight is None else column_index(names, weight.strip(), "weight", "sample_weight")
    if target is None:
        targets = [max(j for j in range(len(names)) if j != weight_index)] if len(names) > 1 else [0]
    else:
        targets = []
        for piece in target.split(","):
            index = column_index(names, piece.strip(), "target", "y_train")
            if index in targets:
                raise InvalidInput(
                    f"'target' names the column {excerpt(names[index])!r} twice; each target is named once.",
                    "target",
                )
            targets.append(index)
    if weight_index is not None and weight_index in targets:
        raise InvalidInput(
            f"'weight' names the column {excerpt(names[weight_index])!r} for 'sample_weight', but it is also a target.",
            "weight",
        )
    features = [j for j in range(len(names)) if j not in targets and j != weight_index]
    if not features:
        raise InvalidInput(
            f"'X_train', the training table, has no feature columns once the target and weight columns "
            f"are taken out; its columns are: {list_names(names)}.",
            "X_train",
        )
    return Layout(features, targets, weight_index)


def column_index(names: tuple[str, ...], name: str, parameter: str, field: str) -> int:
    """Find the column a query parameter (or form field) names, or refuse it naming that parameter."""
    if name not in names:
        what = "an empty name" if not name else f"the column {excerpt(name)!r}"
        raise InvalidInput(
            f"'{parameter}' names {what} for '{field}', but the training table has no such column;"
            f"{did_you_mean(name, names)} Its columns are: {list_names(names)}.",
            parameter,
        )
    return names.index(name)


def read_table(text: str, role: str, field: str) -> Table:
    """Read a CSV table of numbers under a header row; structural problems name ``field``."""
    if '"' in text:
        header, n, cells = split_quoted(text, role, field)
        foreign = FOREIGN_CELL.search("".join(cells))
    else:
        lines = text.replace("\r\n", "\n").rstrip("\n").split("\n")
        header = lines[0].split(",")
        data = lines[1:]
        check_header(header, role, field)
        n = len(data)
        counts = [line.count(",") for line in data]
        width = len(header)
        if counts and (min(counts) != width - 1 or max(counts) != width - 1):
            row = next(i for i, count in enumerate(counts) if count != width - 1)
            raise ragged(field, role, row, 0 if not data[row] else counts[row] + 1, width)
        joined = "\n".join(data)
        foreign = FOREIGN_LINE.search(joined)
        cells = joined.replace("\n", ",").split(",")
    width = len(header)
    if n == 0:
        raise InvalidInput(
            f"{field!r}, the {role} table, has a header but no data rows; send at least one row of numbers.",
            field,
        )
    if foreign is None:
        try:
            values = np.array(cells, dtype=np.float64).reshape(n, width)
        except ValueError:
            values = None
        if values is not None and within_range(values):
            return Table(role, tuple(header), values, {})
    values, problems = convert_slowly(cells, n, width)
    return Table(role, tuple(header), values, problems)


def split_quoted(text: str, role: str, field: str) -> tuple[list[str], int, list[str]]:
    """Split a table with quotes by the csv module: the header, the number of rows, the cells."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise MalformedBody(f"The {role} table is not valid CSV: {exc} (line {reader.line_num}).") from None
    while rows and not rows[-1]:
        rows.pop()
    if not rows:
        raise InvalidInput(f"{field!r}, the {role} table, has no header row; send a header row first.", field)
    header = rows[0]
    check_header(header, role, field)
    for i, row in enumerate(rows[1:]):
        if len(row) != len(header):
            raise ragged(field, role, i, len(row), len(header))
    return header, len(rows) - 1, list(itertools.chain.from_iterable(rows[1:]))


def check_header(header: list[str], role: str, field: str) -> None:
    """Refuse empty or repeated column names."""
    seen: dict[str, int] = {}
    for j, name in enumerate(header):
        if not name:
            raise InvalidInput(
                f"{field!r}, the {role} table, has no name for column {j + 1} of its header; every column "
                "needs a distinct name (pandas writes an unnamed index column: use to_csv(index=False)).",
                field,
            )
        if name in seen:
            raise InvalidInput(
                f"{field!r}, the {role} table, has the column name {excerpt(name)!r} twice in its header "
                f"(columns {seen[name] + 1} and {j + 1}); column names must be distinct.",
                field,
            )
        seen[name] = j


def ragged(field: str, role: str, row: int, cells: int, width: int) -> InvalidInput:
    """The error for a data row without one cell per column."""
    has = "is blank" if cells == 0 else f"has {plural(cells, 'cell')}"
    return InvalidInput(
        f"{field!r}, the {role} table, has a data row {row + 1} that {has}, but its header has "
        f"{plural(width, 'column')} ({ROWS}); every row needs one cell per column.",
        field,
    )


def convert_slowly(cells: list[str], n: int, width: int) -> tuple[np.ndarray, dict[int, tuple[int, str]]]:
    """Convert column by column, finding each column's first bad cell."""
    values = np.zeros((n, width))
    problems: dict[int, tuple[int, str]] = {}
    for j in range(width):
        column = cells[j::width]
        if FOREIGN_CELL.search("".join(column)) is None:
            try:
                values[:, j] = np.array(column, dtype=np.float64)
            except ValueError:
                pass
            else:
                if within_range(values[:, j]):
                    continue
        for i, cell in enumerate(column):
            if not DECIMAL.fullmatch(cell) or not abs(float(cell)) <= MAX_MAGNITUDE:
                problems[j] = (i, cell)
                break
        else:
            values[:, j] = np.array(column, dtype=np.float64)
    return values, problems


def cell_error(field: str, table: Table, row: int, column: int, cell: str) -> InvalidInput:
    """The error for a cell that is not a decimal number in range."""
    place = where(table, row, column)
    if not cell:
        return InvalidInput(
            f"{field!r} has an empty cell at {place}; every cell must be a decimal number.", field
        )
    if DECIMAL.fullmatch(cell):
        return InvalidInput(
            f"{field!r} has {excerpt(cell, 20)} at {place}; every value must be finite and at most "
            f"{MAX_MAGNITUDE:.4g} in magnitude, so that its square does not overflow.",
            field,
        )
    return InvalidInput(
        f"{field!r} has {describe(cell)} at {place}, which is not a decimal number; every cell must be "
        "a number such as 12, -0.5 or 1.5e3, without spaces, digit separators, NaN or infinity.",
        field,
    )


def where(table: Table, row: int, column: int) -> str:
    """Name a cell in a message, with the convention of its row number."""
    return (
        f"data row {row + 1}, column {excerpt(table.names[column])!r} of the {table.role} table "
        f"({ROWS}; row {row + 2} in a spreadsheet)"
    )


def list_names(names: Sequence[str], limit: int = 20) -> str:
    """List column names for a message, the first ``limit`` of them."""
    shown = ", ".join(repr(excerpt(name)) for name in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
