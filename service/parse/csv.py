"""CSV bytes into a typed ``Table``, read by pyarrow's CSV reader.

A table is a header row of distinct, non-empty column names, then data rows of one cell
per column (data rows count from 1 below the header). A cell is *missing* when it is
empty or exactly ``NA``, quoted or not; a *number* when it is a plain decimal (``DECIMAL``:
``12``, ``-0.5``, ``1.5e3``, ``+1``, ``.5``, ``1.``, quoted or not); anything else is *text*
(``nan``, ``inf``, `` 12``, ``1_000``, ``0x10``, ``TRUE``...). A column is numeric when every
present cell is a number (float64 values, ``NaN`` where missing), categorical when none is
(an object array of ``str``, ``None`` where missing); a column mixing both is refused, and
so is a number whose square overflows. Blank lines at the end are dropped; a blank line
inside a table of several columns is refused (as the ``csv`` module reads it: a row of no
cells), and in a table of one column it is a missing cell.

The road, and why it is exact although pyarrow is lenient:

1. Structure, checked on the bytes: UTF-8 (``str.isascii`` covers the usual body at memory
   speed), the quoting (only when the body has a quote: pyarrow takes ``"1"x`` as ``1x``
   and reads an unclosed quote to the end of the body, where the ``csv`` module's strict
   mode refuses both), the header.
2. pyarrow reads every cell as a *string* (no type inference: it would read ``TRUE`` as a
   boolean and trim `` 12`` before we could see it), blank lines kept as rows.
3. Each column is cast to float64 by pyarrow. That cast refuses spaces, ``_``, hex and
   every other spelling outside ``DECIMAL``, except the spellings of NaN and infinity
   (``nan``, ``-Inf``, ``infinity``...), which can only come out as non-finite values; a
   column whose values are all finite, in range, and ``NaN`` exactly where a cell is
   missing, is numeric as read. ``tests/parse/test_csv.py`` holds the hypothesis property
   that compares this typing with ``DECIMAL`` cell by cell, so a pyarrow release that
   widens the cast fails there.
4. Only a column that fails step 3 (text, a mix, an overflow) is typed exactly, cell by
   cell, with ``DECIMAL`` run by pyarrow's regex engine; that pass words the error, if any.

Work is linear in the body: the regular expressions here have no nested repetition, and a
ragged row stops the read at the first one.
"""

from __future__ import annotations

import codecs
import itertools
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from service.errors import InvalidInput, MalformedBody, describe, excerpt
from service.parse.values import MAX_MAGNITUDE, plural
from service.table import Column, Table

#: A number, as the whole cell: the only spelling of one a CSV table has.
DECIMAL = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
#: Cells that are missing values (after unquoting).
MISSING = ("", "NA")
ROWS = "data rows count from 1 below the header"
BOM = b"\xef\xbb\xbf"
#: pyarrow's default; a row longer than a block is read again in one block.
BLOCK = 1 << 20
#: pyarrow takes a block size of at most this many bytes.
LARGEST_BLOCK = 2**31 - 1
UTF8_CHUNK = 1 << 20
#: The most columns a table may have: pyarrow and the typing of each column cost tens of
#: microseconds a column, so a header of a million names is refused before it is read.
MAX_COLUMNS = 10_000
# The patterns below run on the body with its pairs of quotes ("") taken out (the body
# itself when no quoted cell holds one), so that a quoted cell is a quote, anything but a
# quote, and a quote: no nested repetition, which Python's regular expressions would pay
# for in time and memory on a hostile body. A quote opens a cell only where a cell starts
# (``x"y`` is a plain cell holding a quote, as for the ``csv`` module).
#: A quoted cell, then what follows its closing quote: nothing (the end of the body, a
#: comma or a line end comes next, as it must), a character that must not be there, or
#: the end of the body where the closing quote should be.
QUOTED = re.compile(rb'"(?<![^,\r\n]")[^"]*("[^,\r\n]?|\Z)')
#: The opening quote of a cell.
OPENING = re.compile(rb'"(?<![^,\r\n]")')
LF = re.compile(rb"\n")
CR = re.compile(rb"\r")
#: A line end followed by another.
BLANK_LINE = re.compile(rb"(?:\r\n|\r(?!\n)|\n(?<!\r\n))(?=[\r\n])")
#: A quote.
QUOTE = re.compile(rb'"')
#: A quoted cell.
QUOTED_CELL = re.compile(rb'"(?<![^,\r\n]")[^"]*"?')


def read_csv(data: bytes, role: str, *, max_columns: int = MAX_COLUMNS) -> Table:
    """Read a CSV table (header row first) into a typed ``Table`` named ``role``.

    ``role`` (``train`` or ``test``) names the table in every message and is the ``field``
    of every ``InvalidInput``. A body that is not CSV (not UTF-8, a broken quote) is a
    ``MalformedBody``; an empty table, a bad header, a ragged or blank row, a column
    mixing numbers and text, a number out of range, or more than ``max_columns`` columns
    is an ``InvalidInput``.
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
    cells = read_cells(body[rows:], names, quoted, role)
    if len(names) > 1:
        check_blank_rows(plain, cells, role)
    columns = tuple(type_column(name, cells.column(j), role) for j, name in enumerate(names))
    return Table(role, columns, cells.num_rows, numbering="csv")


def check_utf8(data: bytes, role: str) -> None:
    """Raise ``MalformedBody`` unless ``data`` is UTF-8, decoding piecewise to bound memory."""
    if data.isascii():
        return
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    try:
        for offset in range(0, len(view), UTF8_CHUNK):
            decoder.decode(view[offset : offset + UTF8_CHUNK])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise MalformedBody(f"The {role} table is not valid UTF-8; send text encoded as UTF-8.") from None


def check_quotes(data: bytes, start: int, end: int, role: str) -> memoryview:
    """Refuse a quoted cell that is not closed, or that runs on after its closing quote.

    pyarrow would read ``"1"x`` as ``1x`` and an unclosed quote to the end of the body;
    the ``csv`` module's strict mode refuses both, and so does this. Returns the body with
    its pairs of quotes taken out, which is the body itself when its quoted cells hold none.
    """
    plain = memoryview(data)[start:end]
    after = QUOTED.findall(plain)
    if after.count(b'"') == len(after):
        return plain
    taken = data.replace(b'""', b"")
    plain = memoryview(taken)[start : end - (len(data) - len(taken))]
    after = QUOTED.findall(plain)
    if after.count(b'"') == len(after):
        return plain
    first = next(k for k, follower in enumerate(after) if follower != b'"')
    match = next(itertools.islice(QUOTED.finditer(plain), first, None))
    line = line_number(plain, match.start())
    if not after[first]:
        problem = f"the quoted cell that opens on line {line} is never closed"
    else:
        text = describe(after[first][1:].decode("latin-1"))
        problem = f"on line {line}, a quoted cell is followed by {text} before the next comma or line end"
    raise MalformedBody(
        f'The {role} table is not valid CSV: {problem}; a quote inside a quoted cell is written twice ("").'
    )


def line_number(plain: memoryview, offset: int) -> int:
    """The line, counted from 1, that holds the byte at ``offset``."""
    return line_ends(bytes(plain[:offset])) + 1


def line_ends(text: bytes) -> int:
    """Count the line ends (CRLF, CR or LF) in ``text``."""
    return text.count(b"\n") + text.count(b"\r") - text.count(b"\r\n")


def header_length(body: memoryview, plain: memoryview, max_columns: int, role: str) -> int:
    """The length of the header row in ``body``, up to its first line end outside quotes.

    It is found in ``plain`` (the body without its pairs of quotes), where a quoted cell
    is skipped in one step, and refused past ``max_columns`` columns before pyarrow sees it.
    Every search here starts with a literal byte, which Python's regular expressions find
    at memory speed.
    """
    position, quoted_cells = 0, 0
    end = line_end(plain, 0)
    while (opening := OPENING.search(plain, position, end)) is not None:
        quoted_cells += 1
        if quoted_cells > max_columns:
            raise too_wide(role, max_columns)
        closing = QUOTE.search(plain, opening.end())
        position = len(plain) if closing is None else closing.end()
        if position > end:
            end = line_end(plain, position)
    header = plain[:end]
    width = QUOTED_CELL.sub(b"", header).count(b",") + 1
    if width > max_columns:
        raise too_wide(role, max_columns, width)
    if len(plain) == len(body):
        return end
    # The same line end in the body itself: as many line ends precede it there.
    before = line_ends(bytes(header))
    if not before:
        return line_end(body, 0)
    scope = np.frombuffer(body, np.uint8, count=min(len(body), end + len(body) - len(plain) + 1))
    after_cr = np.concatenate(([False], scope[:-1] == ord("\r")))
    starts = np.flatnonzero((scope == ord("\r")) | ((scope == ord("\n")) & ~after_cr))
    return int(starts[before]) if before < len(starts) else len(body)


def line_end(view: memoryview, position: int) -> int:
    """Where the first line end (CR or LF) at or after ``position`` is, or the length."""
    lf = LF.search(view, position)
    stop = len(view) if lf is None else lf.start()
    cr = CR.search(view, position, stop)
    return stop if cr is None else cr.start()


def too_wide(role: str, max_columns: int, width: int | None = None) -> InvalidInput:
    """The error for a header of more than ``max_columns`` columns."""
    count = f"more than {max_columns}" if width is None else str(width)
    return InvalidInput(
        f"'{role}' has {count} columns in its header; a table may have at most {max_columns}.", role
    )


def read_header(header: memoryview, role: str) -> list[str]:
    """Read the column names with pyarrow itself, so the full read sees the same names."""
    names: list[str] = [""]
    if len(header):
        names = pcsv.read_csv(
            pa.BufferReader(pa.py_buffer(bytes(header) + b"\n")),
            read_options=pcsv.ReadOptions(block_size=min(len(header) + 2, LARGEST_BLOCK), use_threads=False),
            convert_options=pcsv.ConvertOptions(check_utf8=False),
        ).column_names
    seen: dict[str, int] = {}
    for j, name in enumerate(names):
        if not name:
            raise InvalidInput(
                f"'{role}' has no name for column {j + 1} of its header; every column needs a distinct "
                "name (pandas writes an unnamed index column: use to_csv(index=False)).",
                role,
            )
        if name in seen:
            raise InvalidInput(
                f"'{role}' has the column name {excerpt(name)!r} twice in its header (columns "
                f"{seen[name] + 1} and {j + 1}); column names must be distinct.",
                role,
            )
        seen[name] = j
    return names


def read_cells(rows: memoryview, names: list[str], quoted: bool, role: str) -> pa.Table:
    """Read the data rows, every cell a string (``None`` where missing); refuse a ragged row.

    pyarrow is given the names, not the header: it would read a long header again.
    """
    ragged: list[pcsv.InvalidRow] = []

    def stop(row: pcsv.InvalidRow) -> str:
        ragged.append(row)
        return "error"

    source = pa.py_buffer(rows)
    block = BLOCK
    while True:
        try:
            return pcsv.read_csv(
                pa.BufferReader(source),
                read_options=pcsv.ReadOptions(block_size=block, column_names=names),
                parse_options=pcsv.ParseOptions(
                    newlines_in_values=quoted, ignore_empty_lines=False, invalid_row_handler=stop
                ),
                convert_options=pcsv.ConvertOptions(
                    column_types={name: pa.string() for name in names},
                    null_values=list(MISSING),
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=True,
                    check_utf8=False,
                ),
            )
        except pa.ArrowInvalid:
            if ragged:
                raise first_ragged_row(source, names, quoted, role) from None
            if block >= min(len(rows), LARGEST_BLOCK):
                raise MalformedBody(f"The {role} table could not be read as CSV.") from None
            # A row longer than a block: read it all as one block.
            block = min(len(rows) + 1, LARGEST_BLOCK)


def first_ragged_row(source: pa.Buffer, names: list[str], quoted: bool, role: str) -> InvalidInput:
    """Read again in order, which numbers the rows, to say which row is ragged first."""
    found: list[pcsv.InvalidRow] = []

    def stop(row: pcsv.InvalidRow) -> str:
        found.append(row)
        return "error"

    try:
        pcsv.read_csv(
            pa.BufferReader(source),
            read_options=pcsv.ReadOptions(
                use_threads=False, block_size=min(source.size + 1, LARGEST_BLOCK), column_names=names
            ),
            parse_options=pcsv.ParseOptions(
                newlines_in_values=quoted, ignore_empty_lines=False, invalid_row_handler=stop
            ),
            convert_options=pcsv.ConvertOptions(include_columns=[], check_utf8=False),
        )
    except pa.ArrowInvalid:
        pass
    # Read in order, pyarrow numbers the rows it is given (the data rows) from 1.
    return ragged_row(role, found[0].number, found[0].actual_columns, len(names))


def ragged_row(role: str, row: int, cells: int, width: int) -> InvalidInput:
    """The error for a data row (counted from 1) without one cell per column."""
    has = "is blank" if cells == 0 else f"has {plural(cells, 'cell')}"
    return InvalidInput(
        f"'{role}' has a data row {row} that {has}, but its header has {plural(width, 'column')} "
        f"({ROWS}); every row needs one cell per column.",
        role,
    )


def check_blank_rows(plain: memoryview, cells: pa.Table, role: str) -> None:
    """Refuse a blank line in a table of several columns, as the ``csv`` module does.

    pyarrow reads one as a row of missing cells, so the body is searched only for a table
    with such a row.
    """
    if any(column.null_count == 0 for column in cells.columns):
        return
    empty = np.ones(cells.num_rows, dtype=bool)
    for column in cells.columns:
        empty &= column.is_null().to_numpy()
        if not empty.any():
            return
    # Quoted cells may hold line ends: stand each for one letter, so that every line end
    # left ends a row.
    rows = QUOTED_CELL.sub(b"q", plain) if QUOTE.search(plain) else plain
    blank = BLANK_LINE.search(rows)
    if blank is not None:
        raise ragged_row(role, line_ends(bytes(rows[: blank.end()])), 0, cells.num_columns)


def type_column(name: str, cells: pa.ChunkedArray, role: str) -> Column:
    """Type one column of string cells: numeric, categorical, or an error naming a cell."""
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
    # One writable copy: pyarrow's own concatenation would be read-only, and copied again.
    values = np.concatenate([chunk.to_numpy(zero_copy_only=False) for chunk in numbers.chunks])
    if missing is None:
        # NaN fails both comparisons, so a cell spelling NaN is caught here.
        low, high = values.min(), values.max()
    else:
        if not np.array_equal(np.isnan(values), missing):
            return None
        low, high = np.fmin.reduce(values), np.fmax.reduce(values)
    return values if -MAX_MAGNITUDE <= low and high <= MAX_MAGNITUDE else None


def type_exactly(name: str, cells: pa.ChunkedArray, missing: np.ndarray | None, role: str) -> Column:
    """Type a column cell by cell against ``DECIMAL``, and word its error if it has one."""
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
