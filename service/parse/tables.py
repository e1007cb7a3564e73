"""JSON tables into a typed ``Table``: named columns of numbers or text, with gaps.

A table is an object of named columns (``{"hood": ["a", "b"], "sqft": [70, 85]}``) or a list
of records (``[{"hood": "a", "sqft": 70}, ...]``). A cell is a JSON number, a string or a
boolean, or ``null`` for a missing value. A column is *numeric* when every present cell is a
number and *categorical* when none is; a column mixing the two is refused if a fit uses it, naming the first
cell of the minority kind (a typo such as ``"12,5"`` in a numeric column must not silently turn
it into categories). Whether missing cells are allowed is for the rules to say, knowing
``missing``; this module only marks them.

A column may also arrive as a float64 array, when the JSON fast road could vouch for all its
cells as numbers in range (``service.parse.table_buffers``): it is numeric as it stands.
"""

from __future__ import annotations

import numpy as np

from service.errors import InvalidInput, describe, excerpt
from service.parse.values import MAX_MAGNITUDE, key_difference, plural
from service.table import Column, Table

FORMS = "an object of named columns or a list of records"
#: The types of a categorical column's cells, as JSON decodes them.
TEXT = frozenset({str, bool})


def read_table(value: object, role: str) -> Table:
    """Read a decoded JSON table; every problem is an ``InvalidInput`` naming ``role``."""
    if isinstance(value, dict):
        return read_columns(value, role)
    if isinstance(value, list) and value and all(isinstance(record, dict) for record in value[:1]):
        return read_records(value, role)
    if isinstance(value, list) and not value:
        raise InvalidInput(f"'{role}' must have at least one row. Got an empty list instead.", role)
    raise InvalidInput(f"'{role}' must be a table ({FORMS}). Got {describe(value)} instead.", role)


def read_columns(columns: dict[str, object], role: str) -> Table:
    """Read an object of named columns, all of the same length."""
    if not columns:
        raise InvalidInput(f"'{role}' must have at least one column. Got an empty object instead.", role)
    first = next(iter(columns))
    typed: list[Column] = []
    for name, cells in columns.items():
        if not isinstance(cells, list | np.ndarray):
            raise InvalidInput(
                f"'{role}' column {excerpt(name)!r} must be a list of cells. Got {describe(cells)} instead.", role
            )
        if len(cells) == 0:
            raise InvalidInput(f"'{role}' column {excerpt(name)!r} is empty; a table has at least one row.", role)
        if typed and len(cells) != len(typed[0]):
            raise InvalidInput(
                f"'{role}' column {excerpt(name)!r} has {plural(len(cells), 'cell')}, "
                f"but column {excerpt(first)!r} has {len(typed[0])}; every column has one cell per row.",
                role,
            )
        if isinstance(cells, np.ndarray):
            # Exported by the fast road (service.parse.table_buffers), which vouched for every
            # cell: float64, present, in range. Typing it cell by cell would find nothing more.
            typed.append(Column(name, "numeric", cells))
        else:
            typed.append(read_column(cells, name, role))
    return Table(role, tuple(typed), len(typed[0]))


def read_records(records: list[object], role: str) -> Table:
    """Read a list of records, all with the same keys."""
    first = records[0]
    assert isinstance(first, dict)
    names = tuple(first)
    if not names:
        raise InvalidInput(f"'{role}' record 0 is empty; a table has at least one column.", role)
    keys = set(names)
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise InvalidInput(f"'{role}' row {i} must be a record, like row 0. Got {describe(record)} instead.", role)
        if record.keys() != keys:
            verb, key = key_difference(record, names, keys)
            raise InvalidInput(
                f"'{role}' record {i} {verb} the key {excerpt(key)!r}, unlike record 0; every record has the same keys "
                "(a missing value is null).",
                role,
            )
    columns = [read_column([record[name] for record in records], name, role) for name in names]  # type: ignore[index]
    return Table(role, tuple(columns), len(records))


def read_column(cells: list[object], name: str, role: str) -> Column:
    """Type one column's cells: numeric or categorical, with a missing mask."""
    if cells and set(map(type, cells)) <= TEXT:
        # Every cell is text (the usual categorical column): no cell to count, mark or check.
        values = np.empty(len(cells), dtype=object)
        values[:] = cells
        return Column(name, "categorical", values)
    numbers = texts = 0
    first_number = first_text = -1
    missing: list[int] = []
    problem: InvalidInput | None = None
    for i, cell in enumerate(cells):
        kind = type(cell)
        if kind is float or kind is int:
            if problem is None and not -MAX_MAGNITUDE <= cell <= MAX_MAGNITUDE:  # type: ignore[operator]
                problem = too_large(role, name, i, cell)
            numbers += 1
            if first_number < 0:
                first_number = i
        elif kind is str or kind is bool:
            texts += 1
            if first_text < 0:
                first_text = i
        elif cell is None:
            missing.append(i)
        else:
            raise InvalidInput(
                f"'{role}' has {describe(cell)} at row {i}, column {excerpt(name)!r} (counting from 0); "
                "a cell is a number, a string, a boolean or null.",
                role,
            )
    mask = None
    if missing:
        mask = np.zeros(len(cells), dtype=bool)
        mask[missing] = True
    if numbers and texts:
        problem = mixed(role, name, cells, numbers, texts, first_number, first_text)
    if texts or problem is not None:
        values = np.empty(len(cells), dtype=object)
        values[:] = cells
        return Column(name, "categorical", values, mask, problem)
    if not numbers:
        # Every cell is missing: no kind to tell, and no value to fit; numeric holds it most simply.
        return Column(name, "numeric", np.full(len(cells), np.nan), mask)
    values = np.array([np.nan if cell is None else cell for cell in cells] if missing else cells, dtype=np.float64)
    return Column(name, "numeric", values, mask)


def mixed(role: str, name: str, cells: list[object], numbers: int, texts: int, first_number: int, first_text: int) -> InvalidInput:
    """The error for a column holding both numbers and text, naming the first cell of the minority kind."""
    row = first_number if numbers < texts else first_text
    majority = "text" if numbers < texts else "numbers"
    return InvalidInput(
        f"'{role}' column {excerpt(name)!r} mixes numbers and text: row {row} (counting from 0) holds "
        f"{describe(cells[row])}, but the column's other cells are mostly {majority}; a column is numeric "
        "or categorical, not both (C(column) in a formula makes a numeric column categorical).",
        role,
    )


def too_large(role: str, name: str, row: int, value: object) -> InvalidInput:
    """The error for a number whose square overflows a float64."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except OverflowError:  # an integer past a float64's range
        number = float("inf")
    shown = "a number too large for a float64" if abs(number) == float("inf") else f"{number:.6g}"
    return InvalidInput(
        f"'{role}' has {shown} at row {row}, column {excerpt(name)!r} (counting from 0); every number must be "
        f"at most {MAX_MAGNITUDE:.4g} in magnitude, so that its square does not overflow.",
        role,
    )
