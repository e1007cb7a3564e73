"""The layout of a CSV body, checked on its bytes: encoding, quoting, header, rows; and its errors.

pyarrow's reader is lenient where the ``csv`` module's strict mode is not: it reads ``"1"x``
as ``1x``, an unclosed quote to the end of the body, and a blank line as a row of missing
cells. This module checks those things itself, on the bytes, before or after pyarrow reads
them, and words the errors (a body that is not CSV is a ``MalformedBody``; a bad header or a
ragged row an ``InvalidInput`` naming the table). Every search here is linear in the body:
the regular expressions have no nested repetition, and most start with a literal byte,
which Python's regular expressions find at memory speed.
"""

from __future__ import annotations

import codecs
import itertools
import re

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

from service.errors import InvalidInput, MalformedBody, describe, excerpt
from service.parse.values import plural

ROWS = "data rows count from 1 below the header"
BOM = b"\xef\xbb\xbf"
#: pyarrow takes a block size of at most this many bytes.
LARGEST_BLOCK = 2**31 - 1
UTF8_CHUNK = 1 << 20
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
