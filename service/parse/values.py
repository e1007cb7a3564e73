"""Matrices and vectors from decoded JSON values, checked element by element.

This is the exact reader: it walks Python values (lists, dicts, numbers) and, at the
first value that breaks a rule, raises ``InvalidInput`` naming the field and the
position. ``service.parse.json`` exports whole arrays of a well-formed body without
Python values in between, and reads a field here whenever it cannot vouch for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.errors import InvalidInput, describe

#: The largest magnitude whose square is still a finite float64.
MAX_MAGNITUDE = float(np.sqrt(np.finfo(np.float64).max))

FORMS = (
    "a list of rows, a flat list of numbers, an object of named columns or a list of records"
)


@dataclass(frozen=True)
class Matrix:
    """A 2-D float64 array, with its column names when the client gave them."""

    values: np.ndarray
    names: tuple[str, ...] | None = None
    flat: bool = False

    @property
    def rows(self) -> int:
        """Number of rows."""
        return int(self.values.shape[0])

    @property
    def columns(self) -> int:
        """Number of columns."""
        return int(self.values.shape[1])


def plural(count: int, noun: str) -> str:
    """Say ``1 column`` or ``3 columns``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def at(row: int, column: int | str | None) -> str:
    """Name a position in a message."""
    if column is None:
        return f"row {row}"
    if isinstance(column, str):
        return f"row {row}, column {column!r}"
    return f"row {row}, column {column}"


def check_element(field: str, row: int, column: int | str | None, value: object, missing: bool = False) -> None:
    """Raise unless a decoded JSON value is a number whose square is finite (or null, if ``missing``).

    Callers test ``type(value) is float`` first: most values are, and that is cheaper. A null
    taken as a missing value becomes NaN in the array (numpy converts ``None`` so).
    """
    kind = type(value)
    if value is None:
        if missing:
            return
        raise InvalidInput(
            f"'{field}' has null at {at(row, column)} (counting from 0); every value must be a JSON number. "
            'A null is a missing value: send "missing": "drop" to leave such rows out.',
            field,
        )
    if kind is float:
        if not -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE:  # type: ignore[operator]
            raise too_large(field, row, column, value)  # type: ignore[arg-type]
        return
    if kind is int:
        if not -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE:  # type: ignore[operator]
            raise too_large(field, row, column, float("inf"))
        return
    raise InvalidInput(
        f"'{field}' has {describe(value)} at {at(row, column)} (counting from 0); "
        "every value must be a JSON number.",
        field,
    )


def read_matrix(value: object, field: str, missing: bool = False) -> Matrix:
    """Read any JSON form of a matrix, checking every element."""
    if isinstance(value, list):
        if not value:
            raise InvalidInput(f"'{field}' must have at least one row. Got an empty list instead.", field)
        first = value[0]
        if isinstance(first, list):
            return Matrix(read_rows(value, field, missing))
        if isinstance(first, dict):
            return read_records(value, field, missing)
        column = read_column(value, field, None, missing)
        return Matrix(column.reshape(-1, 1), flat=True)
    if isinstance(value, dict):
        return read_columns(value, field, missing)
    raise InvalidInput(f"'{field}' must be a matrix ({FORMS}). Got {describe(value)} instead.", field)


def read_vector(value: object, field: str, missing: bool = False) -> np.ndarray:
    """Read a flat list of numbers."""
    if not isinstance(value, list):
        raise InvalidInput(f"'{field}' must be a flat list of numbers. Got {describe(value)} instead.", field)
    if not value:
        raise InvalidInput(f"'{field}' must have at least one value. Got an empty list instead.", field)
    return read_column(value, field, None, missing)


def read_rows(rows: list[object], field: str, missing: bool = False) -> np.ndarray:
    """Read a list of rows of numbers, all of the same length."""
    first = rows[0]
    assert isinstance(first, list)
    width = len(first)
    if width == 0:
        raise InvalidInput(f"'{field}' row 0 is empty; a matrix has at least one column.", field)
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            raise InvalidInput(
                f"'{field}' row {i} must be a list of {plural(width, 'number')}, like row 0. "
                f"Got {describe(row)} instead.",
                field,
            )
        if len(row) != width:
            raise InvalidInput(
                f"'{field}' row {i} has {plural(len(row), 'value')}, but row 0 has {width}.", field
            )
        for j, element in enumerate(row):
            if type(element) is not float or not -MAX_MAGNITUDE <= element <= MAX_MAGNITUDE:
                check_element(field, i, j, element, missing)
    return np.array(rows, dtype=np.float64)


def read_column(values: list[object], field: str, name: str | None, missing: bool = False) -> np.ndarray:
    """Read one flat list of numbers (a vector, or a named column)."""
    for i, element in enumerate(values):
        if type(element) is not float or not -MAX_MAGNITUDE <= element <= MAX_MAGNITUDE:
            check_element(field, i, name, element, missing)
    return np.array(values, dtype=np.float64)


def read_columns(columns: dict[str, object], field: str, missing: bool = False) -> Matrix:
    """Read an object of named columns, all of the same length."""
    if not columns:
        raise InvalidInput(f"'{field}' must have at least one column. Got an empty object instead.", field)
    names = tuple(columns)
    arrays: list[np.ndarray] = []
    for name in names:
        column = columns[name]
        if not isinstance(column, list):
            raise InvalidInput(
                f"'{field}' column {name!r} must be a list of numbers. Got {describe(column)} instead.", field
            )
        if not column:
            raise InvalidInput(f"'{field}' column {name!r} is empty; a matrix has at least one row.", field)
        if arrays and len(column) != len(arrays[0]):
            raise InvalidInput(
                f"'{field}' column {name!r} has {plural(len(column), 'value')}, "
                f"but column {names[0]!r} has {len(arrays[0])}.",
                field,
            )
        arrays.append(read_column(column, field, name, missing))
    return Matrix(np.column_stack(arrays), names)



def key_difference(record: dict[str, object], names: tuple[str, ...], keys: set[str]) -> tuple[str, str]:
    """How a record's keys differ from record 0's (``names``, as the set ``keys``): ``("lacks", key)`` or ``("has", key)``."""
    absent = [k for k in names if k not in record]
    if absent:
        return "lacks", absent[0]
    return "has", next(k for k in record if k not in keys)

def read_records(records: list[object], field: str, missing: bool = False) -> Matrix:
    """Read a list of records (objects of numbers), all with the same keys."""
    first = records[0]
    assert isinstance(first, dict)
    names = tuple(first)
    if not names:
        raise InvalidInput(f"'{field}' record 0 is empty; a matrix has at least one column.", field)
    keys = set(names)
    rows = []
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise InvalidInput(f"'{field}' row {i} must be a record, like row 0. Got {describe(record)} instead.", field)
        if record.keys() != keys:
            verb, key = key_difference(record, names, keys)
            raise InvalidInput(f"'{field}' record {i} {verb} the key {key!r}, unlike record 0; every record has the same keys.", field)
        row = [record[k] for k in names]
        for name, element in zip(names, row, strict=True):
            if type(element) is not float or not -MAX_MAGNITUDE <= element <= MAX_MAGNITUDE:
                check_element(field, i, name, element, missing)
        rows.append(row)
    return Matrix(np.array(rows, dtype=np.float64), names)


def too_large(field: str, row: int, column: int | str | None, value: float) -> InvalidInput:
    """The error for a value that is not finite or whose square overflows."""
    if np.isnan(value):
        what = "NaN"
    elif np.isinf(value):
        what = "a number too large for a float64"
    else:
        what = f"{value:.6g}"
    return InvalidInput(
        f"'{field}' has {what} at {at(row, column)} (counting from 0); every value must be finite "
        f"and at most {MAX_MAGNITUDE:.4g} in magnitude, so that its square does not overflow.",
        field,
    )


def within_range(array: np.ndarray) -> bool:
    """Tell whether every value is finite with a finite square (NaN is not)."""
    if array.size == 0:
        return True
    low, high = array.min(), array.max()
    return bool(-MAX_MAGNITUDE <= low and high <= MAX_MAGNITUDE)
