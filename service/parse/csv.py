"""CSV bytes into a typed ``Table``, read by pyarrow's CSV reader.

A table is a header row of distinct, non-empty column names, then data rows of one cell
per column (data rows count from 1 below the header). Cells are typed as
``service.parse.csv_cells`` says: a column is numeric (float64, ``NaN`` where missing) when
every present cell is a plain decimal, categorical when none is, and has a problem when it
mixes both. Blank lines at the end are dropped; a blank line inside a table of several
columns is refused (as the ``csv`` module reads it: a row of no cells), and in a table of
one column it is a missing cell.

The road, and why it is exact although pyarrow is lenient:

1. Structure, checked on the bytes (``service.parse.csv_layout``): UTF-8, the quoting
   (only when the body has a quote), the header, read by pyarrow itself.
2. The first rows (one small block) are read as strings, which tells which columns look
   numeric. The whole body is then read once, in parallel blocks, with those columns
   converted to float64 by pyarrow's reader and the others kept as strings (no type
   inference: it would read ``TRUE`` as a boolean). That conversion is exact on every
   spelling but spaces and tabs around a number, which it trims: so it is asked for only
   when the data rows hold no space and no tab. Blank lines are kept as rows, for step 4.
3. A float64 column is numeric as read when its values are finite, in range, and ``NaN``
   exactly where a cell is missing (``csv_cells.numeric_column``); one that is not (a cell
   spelling NaN or infinity, an overflow) is read again as strings. A string column is
   cast by pyarrow, then, if that fails, typed cell by cell, which words its problem.
4. If the typed read fails at all (a column looked numeric in its first rows only, a row
   is ragged or longer than a block), the body is read again with every column as
   strings: the slow road, taken only when something is wrong or unusual, names the first
   ragged row.

Work is linear in the body: the regular expressions have no nested repetition, and a
ragged row stops the read at the first one.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from service.errors import InvalidInput, MalformedBody
from service.parse.csv_cells import DECIMAL, MISSING, numeric_column, type_column
from service.parse.csv_layout import (
    BOM,
    LARGEST_BLOCK,
    check_blank_rows,
    check_quotes,
    check_utf8,
    first_ragged_row,
    header_length,
    read_header,
)
from service.table import Column, Table

__all__ = ["DECIMAL", "MAX_COLUMNS", "read_csv"]

#: pyarrow's default block; each block is parsed by one thread, a row longer than a block is
#: read again in one block.
BLOCK = 1 << 20
#: The smallest block a body is cut into: a body of a few megabytes is cut into about four
#: blocks a core, so that the cores finish together; smaller blocks cost more than they save.
SMALLEST_BLOCK = 1 << 18
#: The first rows, read to tell which columns look numeric: this many bytes, or more for a
#: wide table, ``SAMPLE_CELL`` bytes a column, so that the sample holds whole rows.
SAMPLE = 1 << 14
SAMPLE_CELL = 64
#: The most columns a table may have: pyarrow and the typing of each column cost tens of
#: microseconds a column, so a header of a million names is refused before it is read.
MAX_COLUMNS = 10_000
STRING = pa.string()
FLOAT = pa.float64()


def read_csv(data: bytes, role: str, *, max_columns: int = MAX_COLUMNS) -> Table:
    """Read a CSV table (header row first) into a typed ``Table`` named ``role``.

    ``role`` (``train`` or ``test``) names the table in every message and is the ``field``
    of every ``InvalidInput``. A body that is not CSV (not UTF-8, a broken quote) is a
    ``MalformedBody``; an empty table, a bad header, a ragged or blank row, or more than
    ``max_columns`` columns is an ``InvalidInput``. A column mixing numbers and text, or
    holding a number out of range, carries its ``InvalidInput`` as ``Column.problem``.
    """
    check_utf8(data, role)
    start = len(BOM) if data.startswith(BOM) else 0
    end = len(data)
    while end > start and data[end - 1] in b"\r\n":
        end -= 1
    if end == start:
        raise InvalidInput(f"'{role}' is empty; send a CSV table, header row first.", role)
    body = memoryview(data)[start:end]
    first_quote = data.find(b'"', start, end)
    plain = check_quotes(data, start, end, role) if first_quote >= 0 else body
    header = header_length(body, plain, max_columns, role)
    names = read_header(body[:header], role)
    if header == len(body):
        raise InvalidInput(
            f"'{role}' has a header but no data rows; send at least one row under the header.", role
        )
    rows = header + (2 if bytes(body[header : header + 2]) == b"\r\n" else 1)
    # Only quoted cells can hold line ends, which pyarrow reads more slowly to allow for.
    quoted = first_quote >= 0 and data.find(b'"', max(first_quote, start + rows), end) >= 0
    source = pa.py_buffer(body[rows:])
    # pyarrow's conversion to float64 trims spaces and tabs, which make a cell text here.
    spaced = data.find(b" ", start + rows, end) >= 0 or data.find(b"\t", start + rows, end) >= 0
    numbers: set[str] = set() if spaced else looks_numeric(source, names, quoted)
    types = {name: FLOAT if name in numbers else STRING for name in names}
    cells = read_cells(source, names, quoted, role, types)
    if cells is None:
        types = dict.fromkeys(names, STRING)
        cells = read_cells(source, names, quoted, role, types)
        assert cells is not None
    if len(names) > 1:
        check_blank_rows(plain, cells, role)
    columns = [
        typed(name, cells.column(j), types[name], source, names, quoted, role) for j, name in enumerate(names)
    ]
    return Table(role, tuple(columns), cells.num_rows, numbering="csv")


def typed(
    name: str, cells: pa.ChunkedArray, kind: pa.DataType, source: pa.Buffer, names: list[str], quoted: bool, role: str
) -> Column:
    """Type one column as read; a float64 column that does not prove numeric is read again as strings."""
    if kind == FLOAT:
        column = numeric_column(name, cells)
        if column is not None:
            return column
        again = read_cells(source, names, quoted, role, {name: STRING}, include=[name])
        assert again is not None
        cells = again.column(0)
    return type_column(name, cells, role)


def looks_numeric(source: pa.Buffer, names: list[str], quoted: bool) -> set[str]:
    """The columns whose cells in the first rows are all numbers or missing, not all missing.

    A guess, which the full read checks: anything unusual in the first rows (a row longer
    than the sample, a ragged one) makes no guess, and every column is read as strings.
    """
    block = max(SAMPLE, min(source.size, SAMPLE_CELL * len(names)))
    try:
        reader = pcsv.open_csv(
            pa.BufferReader(source),
            read_options=pcsv.ReadOptions(block_size=block, column_names=names, use_threads=False),
            parse_options=pcsv.ParseOptions(newlines_in_values=quoted, ignore_empty_lines=False),
            convert_options=convert_options(dict.fromkeys(names, STRING)),
        )
        with reader:
            batch = reader.read_next_batch()
    except (pa.ArrowInvalid, StopIteration):
        return set()
    present = {name: column for name, column in zip(names, batch.columns, strict=True) if column.null_count < len(column)}
    try:
        # The sample's columns end to end, cast at once: a wide table of numbers pays for one
        # pyarrow call, not one a column.
        pc.cast(pa.concat_arrays(list(present.values())), FLOAT)
        return set(present)
    except pa.ArrowInvalid:
        pass
    numbers = set()
    for name, column in present.items():
        try:
            pc.cast(column, FLOAT)
        except pa.ArrowInvalid:
            continue
        numbers.add(name)
    return numbers


def read_cells(
    source: pa.Buffer,
    names: list[str],
    quoted: bool,
    role: str,
    types: Mapping[str, pa.DataType],
    include: list[str] | None = None,
) -> pa.Table | None:
    """Read the data rows with the columns' ``types`` (``None`` where missing); refuse a ragged row.

    pyarrow is given the names, not the header: it would read a long header again. A read
    converting some column to float64 that fails for any reason but a ragged row gives
    ``None``: the caller reads the body again as strings, which finds the reason.
    """
    ragged: list[pcsv.InvalidRow] = []

    def stop(row: pcsv.InvalidRow) -> str:
        ragged.append(row)
        return "error"

    block = max(SMALLEST_BLOCK, min(BLOCK, source.size // (4 * pa.cpu_count())))
    while True:
        try:
            return pcsv.read_csv(
                pa.BufferReader(source),
                read_options=pcsv.ReadOptions(block_size=block, column_names=names),
                parse_options=pcsv.ParseOptions(
                    newlines_in_values=quoted, ignore_empty_lines=False, invalid_row_handler=stop
                ),
                convert_options=convert_options(types, include),
            )
        except pa.ArrowInvalid:
            if ragged:
                raise first_ragged_row(source, names, quoted, role) from None
            if FLOAT in types.values():
                return None
            if block >= min(source.size, LARGEST_BLOCK):
                raise MalformedBody(f"The {role} table could not be read as CSV.") from None
            # A row longer than a block: read it all as one block.
            block = min(source.size + 1, LARGEST_BLOCK)


def convert_options(types: Mapping[str, pa.DataType], include: list[str] | None = None) -> pcsv.ConvertOptions:
    """pyarrow's conversion: the given types, only ``MISSING`` cells as nulls (quoted or not)."""
    return pcsv.ConvertOptions(
        column_types=dict(types),
        null_values=list(MISSING),
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
        check_utf8=False,
        include_columns=include or [],
    )
