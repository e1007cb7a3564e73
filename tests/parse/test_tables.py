"""JSON tables into typed columns (service/parse/tables.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.errors import InvalidInput
from service.parse.tables import read_table
from service.table import Table


def used(table: Table) -> Table:
    """The table, once a fit that uses every column has checked them (a column's problem is raised)."""
    for column in table.columns:
        column.check()
    return table


def test_a_problem_column_is_refused_only_when_used() -> None:
    table = read_table({"x": [1, 2, "12,5"], "big": [1, 1e200, 3], "y": [1, 2, 3]}, "train")
    assert table["y"].problem is None
    table["y"].check()
    for name, words in (("x", "mixes numbers and text"), ("big", "1e+200")):
        with pytest.raises(InvalidInput) as caught:
            table[name].check()
        assert words in caught.value.detail


def test_columns_and_records_give_the_same_table() -> None:
    columns = {"hood": ["a", "b", None], "sqft": [70, 85.5, None], "new": [True, False, True]}
    records = [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]
    for value in (columns, records):
        table = read_table(value, "train")
        assert table.names == ("hood", "sqft", "new") and table.rows == 3
        hood, sqft, new = table["hood"], table["sqft"], table["new"]
        assert hood.kind == "categorical" and hood.values[:2].tolist() == ["a", "b"]
        assert sqft.kind == "numeric" and sqft.values.dtype == np.float64 and sqft.values[:2].tolist() == [70, 85.5]
        assert new.kind == "categorical" and new.values.tolist() == [True, False, True]
        assert hood.missing is not None and hood.missing.tolist() == [False, False, True]
        assert sqft.missing is not None and sqft.missing.tolist() == [False, False, True]
        assert new.missing is None and not new.has_missing


@pytest.mark.parametrize(
    ("value", "words"),
    [
        pytest.param({"x": [1, 2, "12,5", 4]}, "row 2 (counting from 0) holds the string \"12,5\"", id="typo-in-numbers"),
        pytest.param({"x": ["a", "b", 3, "d"]}, "row 2 (counting from 0) holds 3", id="number-in-text"),
        pytest.param({"x": ["a", 1]}, "row 0", id="tie-names-the-text"),
        pytest.param({"x": [1, [2]]}, "a list at row 1, column 'x'", id="nested-list"),
        pytest.param({"x": [1, {"a": 1}]}, "an object at row 1", id="nested-object"),
        pytest.param({"x": [1, 1e200]}, "1e+200 at row 1", id="square-overflows"),
        pytest.param({"x": [1, 10**400]}, "too large for a float64 at row 1", id="huge-integer"),
        pytest.param({"x": [1, 2], "y": [1]}, "has 1 cell, but column 'x' has 2", id="ragged"),
        pytest.param({"x": []}, "is empty", id="empty-column"),
        pytest.param({}, "at least one column", id="no-columns"),
        pytest.param([], "at least one row", id="no-rows"),
        pytest.param([{"x": 1}, {"y": 2}], "record 1 lacks the key 'x'", id="records-keys"),
        pytest.param([{"x": 1}, 3], "row 1 must be a record", id="record-not-object"),
        pytest.param("x,y\n1,2", "must be a table", id="string"),
        pytest.param({"x": 3}, "column 'x' must be a list", id="column-not-list"),
    ],
)
def test_bad_tables_are_refused_naming_the_table(value: Any, words: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        used(read_table(value, "test"))
    assert caught.value.field == "test"
    assert words in caught.value.detail


CELLS = st.one_of(
    st.none(),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.integers(-(10**6), 10**6),
    st.text(max_size=5),
    st.booleans(),
)


@given(cells=st.lists(CELLS, min_size=1, max_size=20))
def test_a_column_is_typed_by_its_present_cells(cells: list[Any]) -> None:
    numbers = [c for c in cells if isinstance(c, int | float) and not isinstance(c, bool)]
    texts = [c for c in cells if isinstance(c, str | bool)]
    try:
        column = used(read_table({"c": cells}, "train"))["c"]
    except InvalidInput:
        assert numbers and texts
        return
    assert not (numbers and texts)
    assert column.kind == ("categorical" if texts else "numeric")
    missing = [c is None for c in cells]
    assert (column.missing.tolist() if column.missing is not None else [False] * len(cells)) == missing
    present = [c for c in cells if c is not None]
    if column.kind == "numeric":
        assert column.values[~np.array(missing)].tolist() == [float(c) for c in present]
    else:
        assert [v for v, m in zip(column.values, missing, strict=True) if not m] == present
