"""The type of a CSV column from its cells: numeric, categorical, or a problem naming a cell.

A cell is *missing* when it is empty or exactly ``NA``, quoted or not; a *number* when it
is a plain decimal (``DECIMAL``: ``12``, ``-0.5``, ``1.5e3``, ``+1``, ``.5``, ``1.``, quoted
or not); anything else is *text* (``nan``, ``inf``, `` 12``, ``1_000``, ``0x10``, ``TRUE``...).
A column is numeric when every present cell is a number (float64 values, ``NaN`` where
missing), categorical when none is (an object array of ``str``, ``None`` where missing); a
column mixing both has a problem, and so has a number whose square overflows (raised only
if a fit uses the column).

Why typing by pyarrow's conversion is exact: pyarrow's conversion of text to float64
refuses ``_``, hex and every other spelling outside ``DECIMAL`` except two: the spellings
of NaN and infinity (``nan``, ``-Inf``, ``infinity``...), which can only come out as
non-finite values, and, in its CSV reader (not in ``pyarrow.compute.cast``), spaces and tabs
around a number, which ``service.parse.csv`` rules out before it asks for that conversion.
So a column whose values are all finite, in range, and ``NaN`` exactly where a cell is
missing, is numeric as read; ``tests/parse/test_csv.py`` holds the hypothesis properties
that compare this typing with ``DECIMAL`` cell by cell on both roads, so that a pyarrow
release that widens the conversion fails there. Only a column that fails (text, a mix, an
overflow) is typed exactly, cell by cell, with ``DECIMAL`` run by pyarrow's regex engine;
that pass words the problem, if any.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from service.errors import InvalidInput, describe, excerpt
from service.parse.csv_layout import ROWS
from service.parse.values import MAX_MAGNITUDE, plural
from service.table import Column

#: A number, as the whole cell: the only spelling of one a CSV table has.
DECIMAL = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
#: Cells that are missing values (after unquoting).
MISSING = ("", "NA")


def numeric_column(name: str, values: pa.ChunkedArray) -> Column | None:
    """A column pyarrow's CSV reader converted to float64, if that proves every present cell a number in range."""
    missing = values.is_null().to_numpy() if values.null_count else None
    array = writable(values)
    return Column(name, "numeric", array, missing) if in_range(array, missing) else None


def type_column(name: str, cells: pa.ChunkedArray, role: str) -> Column:
    """Type one column of string cells: numeric, categorical, or with a problem naming a cell."""
    rows = len(cells)
    missing = cells.is_null().to_numpy() if cells.null_count else None
    if cells.null_count == rows:
        return Column(name, "numeric", np.full(rows, np.nan), missing)
    values = numbers_as_read(cells, missing)
    if values is not None:
        return Column(name, "numeric", values, missing)
    return type_exactly(name, cells, missing, role)


def numbers_as_read(cells: pa.ChunkedArray, missing: np.ndarray | None) -> np.ndarray | None:
    """The column as float64 when pyarrow's cast proves every present cell a number in range."""
    try:
        numbers = pc.cast(cells, pa.float64())
    except pa.ArrowInvalid:
        return None
    values = writable(numbers)
    return values if in_range(values, missing) else None


def writable(values: pa.ChunkedArray) -> np.ndarray:
    """The float64 chunks in one writable array, ``NaN`` where null, copied once.

    pyarrow's own concatenation would be read-only, and copied again by whoever writes.
    """
    array = np.empty(len(values), dtype=np.float64)
    start = 0
    for chunk in values.chunks:
        array[start : start + len(chunk)] = chunk.to_numpy(zero_copy_only=False)
        start += len(chunk)
    return array


def in_range(values: np.ndarray, missing: np.ndarray | None) -> bool:
    """Whether every value is finite and within ``MAX_MAGNITUDE``, and ``NaN`` exactly where missing."""
    if missing is None:
        # NaN fails both comparisons, so a cell spelling NaN is caught here.
        low, high = values.min(), values.max()
    else:
        if not np.array_equal(np.isnan(values), missing):
            return False
        low, high = np.fmin.reduce(values), np.fmax.reduce(values)
    return bool(-MAX_MAGNITUDE <= low and high <= MAX_MAGNITUDE)


def type_exactly(name: str, cells: pa.ChunkedArray, missing: np.ndarray | None, role: str) -> Column:
    """Type a column cell by cell against ``DECIMAL``, and word its problem if it has one."""
    numbers = pc.match_substring_regex(cells, f"^{DECIMAL}$").fill_null(False).to_numpy()
    texts = ~numbers if missing is None else ~numbers & ~missing
    n_numbers, n_texts = int(numbers.sum()), int(texts.sum())
    if n_numbers and n_texts:
        problem = mixed(name, cells, numbers, texts, (n_numbers, n_texts), role)
        return Column(name, "categorical", cells.to_numpy(zero_copy_only=False), missing, problem)
    if n_texts:
        return Column(name, "categorical", cells.to_numpy(zero_copy_only=False), missing)
    # Every present cell is a number, so the cast failed on one out of range: find it
    # with Python's own conversion of the cells, which is exact.
    strings = cells.to_numpy(zero_copy_only=False)
    values = np.full(len(cells), np.nan)
    present = numbers.nonzero()[0]
    values[present] = np.array(strings[present], dtype=np.float64)
    outside = np.abs(values) > MAX_MAGNITUDE
    if outside.any():
        row = int(np.argmax(outside))
        too_large = InvalidInput(
            f"'{role}' has {excerpt(str(strings[row]), 20)} in column {excerpt(name)!r} at {where(row)}; "
            f"every value must be finite and at most {MAX_MAGNITUDE:.4g} in magnitude, so that its square "
            "does not overflow.",
            role,
        )
        return Column(name, "numeric", values, missing, too_large)
    return Column(name, "numeric", values, missing)


def mixed(
    name: str,
    cells: pa.ChunkedArray,
    numbers: np.ndarray,
    texts: np.ndarray,
    counts: tuple[int, int],
    role: str,
) -> InvalidInput:
    """The error for a column of numbers and text, naming the first cell of the fewer kind."""
    n_numbers, n_texts = counts
    if n_texts <= n_numbers:
        row = int(np.argmax(texts))
        cell = describe(cells[row].as_py())
        return InvalidInput(
            f"'{role}' mixes numbers and text in column {excerpt(name)!r}: {cell} at "
            f"{where(row)} is not a decimal number, while the column has {plural(n_numbers, 'number')}; "
            "a number is written like 12, -0.5 or 1.5e3, without spaces, digit separators, NaN or "
            "infinity (an empty cell or NA is a missing value).",
            role,
        )
    row = int(np.argmax(numbers))
    cell = describe(cells[row].as_py())
    return InvalidInput(
        f"'{role}' mixes text and numbers in column {excerpt(name)!r}: {cell} at {where(row)} "
        f"is a decimal number, while the column has {plural(n_texts, 'text cell')}; a column "
        "holds numbers or text, not both (an empty cell or NA is a missing value).",
        role,
    )


def where(row: int) -> str:
    """Name a data row (counted from 0) in a message, with the convention of its number."""
    return f"data row {row + 1} ({ROWS}; row {row + 2} in a spreadsheet)"
