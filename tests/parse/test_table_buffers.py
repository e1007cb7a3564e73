"""JSON tables on the fast road (service/parse/table_buffers.py): numeric columns as buffers, the rest exact."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import service.parse.tables
from service.errors import InvalidInput
from service.parse import syntax
from service.parse.json import PlainFields, parse_json
from service.parse.rules import build_request
from service.request import TableRequest
from service.settings import Limits
from service.table import Column, Table


@pytest.fixture
def typed_cell_by_cell(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The columns the exact reader types cell by cell, in order."""
    seen: list[str] = []
    read_column = service.parse.tables.read_column

    def spy(cells: list[object], name: str, role: str) -> Column:
        seen.append(name)
        return read_column(cells, name, role)

    monkeypatch.setattr(service.parse.tables, "read_column", spy)
    return seen


def parse_table(body: bytes) -> Table:
    """The training table of a formula fit's JSON body, as the fast road reads it."""
    request = parse_json(body, "fit", Limits())
    assert isinstance(request, TableRequest) and request.train is not None
    return request.train


def test_only_the_columns_that_are_not_all_numbers_are_read_cell_by_cell(typed_cell_by_cell: list[str]) -> None:
    train = {
        "x": [1, 2.5, -0.0, 2**63],
        "hood": ["a", "b[", "a", "c"],  # brackets in text and names are counted, not mistaken for arrays
        "gap[1]": [1.5, None, 2, 3],
        "new": [True, False, True, True],
        "big": [1, 1e200, 3, 4],
        "y": [1, 2, 3, 7],
    }
    table = parse_table(orjson.dumps({"train": train, "formula": "y ~ x"}))
    assert typed_cell_by_cell == ["hood", "gap[1]", "new", "big"]
    assert table["x"].kind == "numeric" and table["x"].missing is None
    assert table["x"].values.tolist() == [1.0, 2.5, 0.0, 9223372036854775808.0]
    assert np.signbit(table["x"].values[2])  # -0.0 stays negative, as JSON wrote it
    assert table["y"].values.dtype == np.float64 and table["y"].values.tolist() == [1.0, 2.0, 3.0, 7.0]
    assert table["gap[1]"].missing is not None and table["gap[1]"].missing.tolist() == [False, True, False, False]
    assert table["new"].kind == "categorical" and table["hood"].kind == "categorical"
    with pytest.raises(InvalidInput) as caught:
        table["big"].check()
    assert "1e+200 at row 1, column 'big'" in caught.value.detail


def test_the_test_table_is_read_the_same_way(typed_cell_by_cell: list[str]) -> None:
    body = {"train": {"x": [1, 2, 3], "y": [2, 4, 7]}, "formula": "y ~ x", "test": {"x": [4, 5], "g": ["a", "b"]}}
    request = parse_json(orjson.dumps(body), "predict", Limits())
    assert isinstance(request, TableRequest) and request.test is not None
    assert typed_cell_by_cell == ["g"]
    assert request.test["x"].values.tolist() == [4.0, 5.0]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        pytest.param(b'{"train": {"x": [1, [2], 3], "y": [1, 2, 3]}}', "a list at row 1, column 'x'", id="nested"),
        pytest.param(b'{"train": {"x": [[1], [2], [3]], "y": [1, 2, 3]}}', "a list at row 0, column 'x'", id="rows"),
        pytest.param(b'{"train": {"y": [1, 2, 3], "x": [1, 2, [3]]}}', "a list at row 2, column 'x'", id="last"),
        # A [ written as an escape is one more [ for the readers, none in the body's bytes: it
        # must not make up for the [ of a nested array that an export leaves uncounted.
        pytest.param(
            rb'{"train": {"x": [1, [2], 3], "g": ["\u005b", "a", "b"], "y": [1, 2, 3]}}',
            "a list at row 1, column 'x'",
            id="escaped-in-text",
        ),
        pytest.param(
            rb'{"train": {"x": [1, [2], 3], "\u005b": [1, 2, 3], "y": [1, 2, 3]}}',
            "a list at row 1, column 'x'",
            id="escaped-in-name",
        ),
        pytest.param(
            rb'{"train": {"x": [1, [2], 3], "y": [1, 2, 3]}, "target": "\u005B"}',
            "a list at row 1, column 'x'",
            id="escaped-in-field",
        ),
    ],
)
def test_an_array_inside_a_numeric_column_is_refused_although_simdjson_flattens_it(body: bytes, words: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_json(body[:-1] + b', "formula": "y ~ x"}', "fit", Limits())
    assert caught.value.field == "train" and words in caught.value.detail


def test_a_repeated_column_name_keeps_the_last_column_as_the_exact_road_does() -> None:
    body = b'{"train": {"x": [1, 2, 3], "y": [1, 2, 3], "x": ["a", "b", "c"]}, "formula": "y ~ x"}'
    table = parse_table(body)
    assert table.names == ("x", "y") and table["x"].kind == "categorical"
    assert table["x"].values.tolist() == ["a", "b", "c"]


# The fast and the exact roads agree on every table: the same columns, kinds, values, gaps and
# problems, or the same first error.

#: Written into the body as ``\u005b``, an escaped ``[`` (a backslash before it makes it text).
ESCAPED = "\x01"
NAMES = ("x", "y", "g", "a[1]", "b]", f"e{ESCAPED}")
DEFECTS: tuple[object, ...] = (None, "1.5", [2.0], [], True, 1e300, -(2**63), 2**64 - 1, 10**20, {"a": 1})
TEXTS = (ESCAPED, "\\u005b")  # an escaped [, and the text \u005b
NOT_COLUMNS: tuple[object, ...] = (3, "x", None, {"a": [1]}, [])


@st.composite
def cells(draw: st.DrawFn, rows: int) -> object:
    """A column: numbers, text or booleans, with a few defects; or now and then no column at all."""
    if draw(st.integers(0, 15)) == 0:
        return draw(st.sampled_from(NOT_COLUMNS))
    kind = draw(st.sampled_from(["float", "float", "wide", "int", "text", "bool"]))
    element = {
        "float": st.floats(-1e9, 1e9, allow_nan=False),
        "wide": st.floats(allow_nan=False, allow_infinity=False),  # past the square's range too
        "int": st.integers(-(2**63), 2**63),
        "text": st.text(max_size=3),
        "bool": st.booleans(),
    }[kind]
    column = [draw(element) for _ in range(rows)]
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        column[draw(st.integers(0, rows - 1))] = draw(st.sampled_from(DEFECTS + TEXTS))
    if draw(st.integers(0, 10)) == 0:
        column = column[:-1]  # a ragged table
    return column


@st.composite
def table_text(draw: st.DrawFn) -> str:
    """A JSON table of named columns (names may repeat), or now and then of records."""
    rows = draw(st.integers(1, 5))
    names = draw(st.lists(st.sampled_from(NAMES), min_size=0, max_size=4, unique=True))
    if names and draw(st.integers(0, 8)) == 0:
        names.append(draw(st.sampled_from(names)))  # a repeated name
    if draw(st.integers(0, 12)) == 0:
        names.append("n\0")  # a NUL in a name
    columns = [(name, draw(cells(rows))) for name in names]
    if draw(st.integers(0, 8)) == 0:
        return json.dumps([{name: column for name, column in columns}])
    return "{" + ", ".join(f"{json.dumps(name)}: {json.dumps(column)}" for name, column in columns) + "}"


@st.composite
def table_bodies(draw: st.DrawFn) -> bytes:
    """A /fit body in the table form: a training table, maybe a test table, maybe a repeated field."""
    formula = draw(st.sampled_from(["y ~ x", f"y ~ x{ESCAPED}"]))
    fields = [("train", draw(table_text())), ("formula", json.dumps(formula))]
    if draw(st.booleans()):
        fields.append(("test", draw(table_text())))
    if draw(st.integers(0, 8)) == 0:
        fields.append(("train", draw(table_text())))
    order = draw(st.permutations(fields))
    text = "{" + ", ".join(f'"{name}": {value}' for name, value in order) + "}"
    return text.replace(json.dumps(ESCAPED)[1:-1], "\\u005b").encode()


def column_outcome(column: Column) -> tuple[object, ...]:
    """A column in a form that compares exactly: numbers by their bits, problems by their words."""
    values = column.values.tobytes() if column.kind == "numeric" else column.values.tolist()
    missing = None if column.missing is None else column.missing.tolist()
    problem = column.problem
    words = (problem.detail, problem.field) if isinstance(problem, InvalidInput) else problem
    return (column.name, column.kind, values, missing, words)


def outcome(parse: Any) -> tuple[str, object]:
    """A parse's tables, or its error, in a form that compares exactly."""
    try:
        request = parse()
    except InvalidInput as exc:
        return ("error", (exc.detail, exc.field))
    tables = [request.train, request.test]
    return ("request", [None if t is None else (t.rows, [column_outcome(c) for c in t.columns]) for t in tables])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=table_bodies())
def test_fast_and_exact_roads_read_the_same_tables(body: bytes) -> None:
    limits = Limits()
    fast = outcome(lambda: parse_json(body, "fit", limits))
    exact = outcome(lambda: build_request(PlainFields(syntax.decode(body)), "fit", limits))  # type: ignore[arg-type]
    assert fast == exact
