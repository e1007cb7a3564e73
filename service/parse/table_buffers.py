"""JSON tables on the fast road: each column of numbers exported as one float64 buffer.

A table of named columns (``{"sqft": [70, 85], "hood": ["a", "b"]}``) parsed by simdjson is
handed to ``service.parse.tables`` column by column: a column simdjson can vouch for as all
numbers, each within the range the contract allows, becomes a float64 array straight from
simdjson's buffer, with no Python object per cell; every other column (text, booleans,
nulls, a number out of range, anything odd) is decoded and typed cell by cell by the exact
reader, so that its kind, its missing cells and its messages are those of the exact road.

simdjson flattens nested arrays when it exports a buffer (``[1, [2]]`` becomes ``1, 2``), so
the caller compares the body's ``[`` with those the readers account for, and reads the table
exactly when the counts differ. Here an exported column accounts for one ``[``; a decoded
part, read exactly, for those of its JSON text (counted in simdjson's minified text of it,
cheaper than walking 10,000 decoded strings). A table whose column names repeat or hold a
NUL character is decoded whole, as before: which of the repeated columns counts, and how
such a name is spelled, are the decoder's to say.
"""

from __future__ import annotations

import numpy as np
import simdjson

from service.parse.values import within_range

#: Fields whose values are tables: their numeric columns are exported as buffers.
TABLES = frozenset({"train", "test"})


def export_table(table: simdjson.Object) -> tuple[dict[str, object], int]:
    """The table's columns by name, and the ``[`` the reading accounts for.

    A column simdjson vouches for is a float64 array; any other is decoded into Python
    values for the exact reader (``service.parse.tables.read_table`` takes both).
    """
    names = list(table.keys())
    if len(set(names)) != len(names) or any("\0" in name for name in names):
        return dict(table.as_dict()), brackets(table)
    columns: dict[str, object] = {}
    counted = sum(name.count("[") for name in names)
    for name in names:
        cells = table[name]
        values = numbers(cells) if isinstance(cells, simdjson.Array) else None
        if values is not None:
            columns[name] = values
            counted += 1
            continue
        counted += brackets(cells)
        if isinstance(cells, simdjson.Array):
            columns[name] = cells.as_list()
        elif isinstance(cells, simdjson.Object):
            columns[name] = cells.as_dict()
        else:
            columns[name] = cells
    return columns, counted


def brackets(value: object) -> int:
    """The ``[`` in the JSON text of a value decoded exactly (inside strings too)."""
    if isinstance(value, simdjson.Array | simdjson.Object):
        text: str | bytes = value.mini  # bytes at run time, though pysimdjson's stubs say str
        return text.count(b"[") if isinstance(text, bytes) else text.count("[")
    return value.count("[") if isinstance(value, str) else 0


def numbers(cells: simdjson.Array) -> np.ndarray | None:
    """The cells as float64, if they are all numbers in range; ``None`` if simdjson cannot vouch.

    A boolean, a null, a string or an object among them makes simdjson refuse the buffer; an
    array among them is flattened, which the caller's count of ``[`` catches.
    """
    size = len(cells)
    if size == 0:
        return None
    try:
        values = np.frombuffer(cells.as_buffer(of_type="d"), dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if values.size != size or not within_range(values):
        return None
    return values
