"""Tests of the CSV reader (service/parse/csv.py): bytes into a typed Table."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import service.parse.csv
import service.parse.csv_cells
from service.errors import FitserveError, InvalidInput, MalformedBody, describe
from service.parse.csv import DECIMAL, MAX_COLUMNS, read_csv
from service.parse.values import MAX_MAGNITUDE
from service.table import Table

NUMBER = re.compile(DECIMAL)


def read_used(body: bytes, role: str = "train") -> Table:
    """Read ``body`` as a fit that uses every column would: a column's problem is raised."""
    table = read_csv(body, role)
    for column in table.columns:
        column.check()
    return table


def refusal(body: bytes, role: str = "train") -> FitserveError:
    """The error reading ``body`` (and using every column) raises."""
    with pytest.raises(FitserveError) as info:
        read_used(body, role)
    return info.value


def assert_sentence(error: FitserveError) -> None:
    """A message is a full sentence, and names its field when it has one."""
    detail = error.detail
    assert len(detail) >= 20 and not detail[0].islower(), detail
    assert detail.endswith(".") and not detail.endswith(".."), detail
    assert error.field is None or f"'{error.field}'" in detail, detail


# ---------------------------------------------------------------- numbers and layout


@pytest.mark.parametrize(
    "cell", ["12", "-0.5", "1.5e3", "+1", ".5", "1.", "-.5e-3", "1E+05", "007", "1e-400", "1e154", '"12"']
)
def test_every_decimal_spelling_is_a_number_read_exactly(cell: str) -> None:
    table = read_csv(f"x,y\n{cell},1\n2,2\n".encode(), "train")
    x = table["x"]
    assert x.kind == "numeric" and x.missing is None
    assert x.values.tolist() == [float(cell.strip('"')), 2.0]


def test_numeric_columns_are_float64_c_contiguous_and_writable() -> None:
    table = read_csv(b"a,b\n1,2\n3,4\n", "train")
    for column in table.columns:
        assert column.values.dtype == np.float64
        assert column.values.flags.c_contiguous and column.values.flags.writeable


def test_a_large_table_reads_every_value_exactly() -> None:
    rng = np.random.default_rng(0)
    values = rng.standard_normal((20_000, 3)) * [1e-300, 1, 1e150]
    body = "a,b,c\n" + "\n".join(",".join(repr(float(v)) for v in row) for row in values)
    table = read_csv(body.encode(), "train")
    assert table.rows == 20_000 and table.names == ("a", "b", "c")
    for j, name in enumerate(table.names):
        assert np.array_equal(table[name].values, values[:, j])


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"a,b\n1,2\n3,4\n", id="plain"),
        pytest.param(b"\xef\xbb\xbfa,b\r\n1,2\r\n3,4\r\n", id="bom-and-crlf"),
        pytest.param(b"a,b\r1,2\r3,4", id="cr"),
        pytest.param(b'"a","b"\n"1","2"\n3,4\n\n', id="quoted"),
        pytest.param(b'"a","b"\n1,2\n3,4\n', id="quoted-header"),
        pytest.param(b"a,b\n1,2\n3,4\n\n\n", id="trailing-blank-lines"),
        pytest.param(b"a,b\n1,2\n3,4", id="no-final-newline"),
    ],
)
def test_tables_in_common_spellings_read_the_same(body: bytes) -> None:
    table = read_csv(body, "train")
    assert table.names == ("a", "b") and table.rows == 2
    assert table["a"].values.tolist() == [1, 3] and table["b"].values.tolist() == [2, 4]


def test_quoted_header_names_may_hold_commas_quotes_and_line_ends() -> None:
    table = read_csv(b'"area, m2","say ""hi""","two\nlines"\r\n1,2,3\r\n', "train")
    assert table.names == ("area, m2", 'say "hi"', "two\nlines")
    assert table.rows == 1


def test_quoted_cells_may_hold_line_ends_commas_and_quotes() -> None:
    table = read_csv(b'id,note\n1,"a, b"\n2,"x\n\ny"\n3,"say ""hi"""\n4,x"y\n', "train")
    assert table["note"].values.tolist() == ["a, b", "x\n\ny", 'say "hi"', 'x"y']


# ---------------------------------------------------------------- missing cells and text


def test_empty_and_na_cells_are_missing_quoted_or_not() -> None:
    table = read_csv(b'x,h\n1,a\n,""\nNA,"NA"\n4,b\n', "test")
    x, h = table["x"], table["h"]
    assert x.kind == "numeric" and x.missing is not None and x.missing.tolist() == [False, True, True, False]
    assert np.isnan(x.values[1:3]).all() and x.values[[0, 3]].tolist() == [1, 4]
    assert h.kind == "categorical" and h.values.dtype == object
    assert h.values.tolist() == ["a", None, None, "b"]
    assert h.missing is not None and h.missing.tolist() == [False, True, True, False]


@pytest.mark.parametrize("cell", ["N/A", "null", "NULL", "None", "na", " NA", "#N/A", "NaN", "nan"])
def test_only_empty_and_na_are_missing(cell: str) -> None:
    column = read_csv(f"h\n{cell}\nb\n".encode(), "train")["h"]
    assert column.kind == "categorical" and column.missing is None
    assert column.values.tolist() == [cell, "b"]


def test_a_column_with_no_present_cell_is_numeric_and_all_missing() -> None:
    column = read_csv(b"x,e\n1,\n2,NA\n", "train")["e"]
    assert column.kind == "numeric" and np.isnan(column.values).all()
    assert column.missing is not None and column.missing.all()


def test_a_blank_line_in_a_one_column_table_is_a_missing_cell() -> None:
    column = read_csv(b"y\n1\n\n3\n", "test")["y"]
    assert column.missing is not None and column.missing.tolist() == [False, True, False]


#: Cells every library reads leniently as numbers, or that look like one; all are text here.
TEXT_CELLS = [
    "nan", "NaN", "-nan", "inf", "-inf", "+Inf", "Infinity", "-Infinity", "iNfInItY", " 12", "12 ",
    "1 000", "1_000", "12,5", "0x10", "1e", "1e+", ".", "-", "+", "1.2.3", "1d5", "1f", "TRUE", "true",
    "\u0661\u0662", "12\x00", "\uff11\uff12", "1/2", "$1", "1%", "--1", "e5",
]  # fmt: skip


@pytest.mark.parametrize("cell", TEXT_CELLS)
def test_a_cell_outside_decimal_is_text(cell: str) -> None:
    body = 'h\n"{}"\n"z"\n'.format(cell.replace('"', '""')).encode()
    column = read_csv(body, "train")["h"]
    assert column.kind == "categorical"
    assert column.values.tolist() == [cell, "z"]


@pytest.mark.parametrize("cell", TEXT_CELLS)
def test_a_text_cell_in_a_numeric_column_is_refused_naming_it(cell: str) -> None:
    body = 'a,b\n1,2\n3,"{}"\n5,6\n'.format(cell.replace('"', '""')).encode()
    error = refusal(body)
    assert isinstance(error, InvalidInput) and error.field == "train"
    assert_sentence(error)
    assert "column 'b'" in error.detail and "data row 2" in error.detail
    assert "row 3 in a spreadsheet" in error.detail
    assert "not a decimal number" in error.detail and "1.5e3" in error.detail


# ---------------------------------------------------------------- column types


@pytest.mark.parametrize(
    ("body", "kind", "cell", "row"),
    [
        pytest.param(b"h\n1\n2\nx\n4\n", "text", '"x"', 3, id="text-among-numbers"),
        pytest.param(b"h\na\nb\n12\nc\n", "number", '"12"', 3, id="number-among-text"),
        pytest.param(b"h\na\n7\n", "text", '"a"', 1, id="tie-names-the-first-text-cell"),
        pytest.param(b"h\n7\na\n", "text", '"a"', 2, id="tie-names-the-text-cell-when-it-comes-second"),
        pytest.param(b"h\n\nx\n1\n2\n", "text", '"x"', 2, id="missing-cells-do-not-count"),
        pytest.param(b"h\na\nNA\n1e999\nb\n", "number", '"1e999"', 3, id="an-overflowing-number-is-a-number"),
        pytest.param(b"h\n1\n2\nnan\n", "text", '"nan"', 3, id="nan-is-text"),
    ],
)
def test_a_column_mixing_numbers_and_text_names_the_first_cell_of_the_fewer_kind(
    body: bytes, kind: str, cell: str, row: int
) -> None:
    error = refusal(body, "test")
    assert isinstance(error, InvalidInput) and error.field == "test"
    assert_sentence(error)
    assert "'test' mixes" in error.detail and "column 'h'" in error.detail
    assert f"{cell} at data row {row} " in error.detail
    assert ("is a decimal number" in error.detail) == (kind == "number")


@pytest.mark.parametrize("cell", ["1e999", "-1e999", "2e154", "-1.35e154", '"1e400"', "9" * 400])
def test_a_number_whose_square_overflows_is_refused_naming_it(cell: str) -> None:
    error = refusal(f"a,b\n1,2\n3,{cell}\n".encode())
    assert isinstance(error, InvalidInput) and error.field == "train"
    assert_sentence(error)
    assert cell.strip('"')[:17] in error.detail
    assert "column 'b' at data row 2" in error.detail and "overflow" in error.detail


def test_the_largest_number_whose_square_is_finite_is_taken() -> None:
    values = read_csv(f"a\n{MAX_MAGNITUDE!r}\n{-MAX_MAGNITUDE!r}\n".encode(), "train")["a"].values
    assert values.tolist() == [MAX_MAGNITUDE, -MAX_MAGNITUDE]


# ---------------------------------------------------------------- structure


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        pytest.param(b"", 422, "'train' is empty", id="empty"),
        pytest.param(b"\r\n\n", 422, "'train' is empty", id="blank"),
        pytest.param(b"\xef\xbb\xbf", 422, "'train' is empty", id="bom-alone"),
        pytest.param(b"a,b,y\n", 422, "no data rows", id="header-only"),
        pytest.param(b"a,b,y", 422, "no data rows", id="header-only-no-newline"),
        pytest.param(b"a,y\n1,\xff\n", 400, "not valid UTF-8", id="bad-utf8"),
        pytest.param(b"a,y\n1,\xe2\x82\n", 400, "not valid UTF-8", id="cut-utf8"),
        pytest.param(b'a,y\n"1,2\n', 400, "opens on line 2 is never closed", id="open-quote"),
        pytest.param(
            b'a,y\n1,2\n3,"x""\n', 400, "opens on line 3 is never closed", id="open-quote-ending-in-a-pair"
        ),
        pytest.param(b'a,y\n"1"x,2\n', 400, 'followed by the string "x"', id="text-after-closing-quote"),
        pytest.param(b'a,"y\n\nz"q\n1,2\n', 400, "on line 1", id="text-after-a-quoted-header-name"),
        pytest.param(b"a,b,y\n1,2,3\n4,5\n", 422, "data row 2 that has 2 cells", id="short-row"),
        pytest.param(b"a,b,y\n1,2,3\n4,5,6,7\n", 422, "data row 2 that has 4 cells", id="long-row"),
        pytest.param(b"a,b,y\n1,2,3\n\n4,5,6\n", 422, "data row 2 that is blank", id="blank-row"),
        pytest.param(
            b"a,b\r\n1,2\r\n3,4\r\n\r\n5,6\r\n", 422, "data row 3 that is blank", id="blank-crlf-row"
        ),
        pytest.param(
            b'a,b\n1,"x\n\ny"\n,\n\n5,6\n', 422, "data row 3 that is blank", id="blank-row-after-quoted-lines"
        ),
        pytest.param(b'a,b,y\n1,2,3\n"4\n5",6\n', 422, "data row 2 that has 2 cells", id="short-quoted-row"),
        pytest.param(b"a,a,y\n1,2,3\n", 422, "'a' twice", id="duplicate-name"),
        pytest.param(b",a,y\n0,1,2\n", 422, "index=False", id="unnamed-column"),
        pytest.param(b"\na,y\n0,1\n", 422, "no name for column 1", id="blank-header"),
    ],
)
def test_bad_structure_is_refused(body: bytes, status: int, words: str) -> None:
    error = refusal(body)
    assert error.status == status and words in error.detail, error.detail
    assert isinstance(error, MalformedBody) == (status == 400)
    assert error.field == (None if status == 400 else "train")
    assert_sentence(error)


def test_a_blank_row_is_told_from_a_row_of_missing_cells() -> None:
    table = read_csv(b'a,b\n1,"x\n\ny"\n,\n"",NA\n5,z\n', "train")
    assert table.rows == 4 and table["a"].missing is not None
    assert table["a"].missing.tolist() == [False, True, True, False]


def test_the_first_ragged_row_is_named_among_many() -> None:
    body = b"a,b\n" + b"1,2\n" * 100_000 + b"3\n" + b"4,5,6\n" * 10
    error = refusal(body)
    assert "data row 100001 that has 1 cell" in error.detail


def test_a_header_wider_than_the_limit_is_refused_before_it_is_read() -> None:
    error = refusal(b"," * MAX_COLUMNS + b"\n" + b"1," * MAX_COLUMNS + b"1\n")
    assert isinstance(error, InvalidInput) and f"{MAX_COLUMNS + 1} columns" in error.detail
    table = read_csv(b",".join(b"c%d" % j for j in range(100)) + b"\n" + b"1," * 99 + b"1\n", "train")
    assert len(table) == 100
    quoted = refusal(b'"a",' * MAX_COLUMNS + b'"b"\n' + b"1," * MAX_COLUMNS + b"1\n")
    assert f"more than {MAX_COLUMNS} columns" in quoted.detail
    assert len(read_csv(b"a,b,c\n1,2,3\n", "train", max_columns=3)) == 3
    with pytest.raises(InvalidInput, match="3 columns in its header; a table may have at most 2"):
        read_csv(b"a,b,c\n1,2,3\n", "train", max_columns=2)


def test_only_text_columns_and_errors_take_the_exact_road(monkeypatch: pytest.MonkeyPatch) -> None:
    exact: list[str] = []
    typed = service.parse.csv_cells.type_exactly

    def record(name: str, *args: Any) -> Any:
        exact.append(name)
        return typed(name, *args)

    def never(*args: Any) -> Any:
        raise AssertionError("a table without a ragged row was read twice")

    monkeypatch.setattr(service.parse.csv_cells, "type_exactly", record)
    monkeypatch.setattr(service.parse.csv, "first_ragged_row", never)
    table = read_csv(b"x,h,y\n1.5,a,\n-2,b,3e2\nNA,,4\n", "train")
    assert [column.kind for column in table.columns] == ["numeric", "categorical", "numeric"]
    assert exact == ["h"]
    with pytest.raises(InvalidInput):
        read_used(b"x,y\n1,2\n3,inf\n", "train")
    assert exact == ["h", "y"]


# ---------------------------------------------------------------- the typed road and its checks

#: Enough rows that the last ones lie past the first rows read to guess the column types.
LONG = 20_000


def long_table(last: str, *, other: str = "7") -> bytes:
    """A two-column table of ``LONG`` numeric rows, then one row whose second cell is ``last``."""
    body = b"a,b\n" + b"1.5,2.25\n" * LONG + f"3,{last}\n{other},8\n".encode()
    assert len(body) > 2 * service.parse.csv.SAMPLE
    return body


def typed_as_read(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the columns typed from strings (the names given to ``type_column``)."""
    names: list[str] = []
    typed = service.parse.csv.type_column

    def record(name: str, *args: Any) -> Any:
        names.append(name)
        return typed(name, *args)

    monkeypatch.setattr(service.parse.csv, "type_column", record)
    return names


def test_numeric_columns_are_converted_by_the_reader_without_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    from_strings = typed_as_read(monkeypatch)
    table = read_used(b"x,h,y\n1.5,a,\n-2,b,3e2\nNA,,4\n" + b"0,c,1\n" * 10)
    assert [column.kind for column in table.columns] == ["numeric", "categorical", "numeric"]
    assert from_strings == ["h"]
    assert table["y"].values[:3].tolist()[1:] == [300.0, 4.0] and table["y"].missing is not None


def test_a_table_whose_rows_are_longer_than_the_sample_is_converted_by_the_reader(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from_strings = typed_as_read(monkeypatch)
    width = MAX_COLUMNS
    body = ",".join(f"c{j}" for j in range(width)).encode() + b"\n" + (b"-0.123456," * (width - 1) + b"2\n") * 20
    table = read_used(body)
    assert from_strings == [] and len(table) == width and table.rows == 20
    assert table["c0"].values.tolist() == [-0.123456] * 20 and table[f"c{width - 1}"].values.tolist() == [2.0] * 20


def test_a_body_with_a_space_or_tab_in_its_rows_types_every_column_from_strings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from_strings = typed_as_read(monkeypatch)
    for separator in (" ", "\t"):
        from_strings.clear()
        table = read_used(f"x,h,y\n1,a{separator}b,2\n3,c,4\n".encode())
        assert from_strings == ["x", "h", "y"]
        assert table["x"].values.tolist() == [1, 3] and table["h"].values.tolist() == [f"a{separator}b", "c"]


@pytest.mark.parametrize("cell", [" 12", "12 ", "\t12", '" 12"', "1_000", "TRUE", "nan", "-Inf", "0x10"])
def test_a_text_cell_past_the_first_rows_of_a_numeric_column_is_refused_naming_it(cell: str) -> None:
    error = refusal(long_table(cell))
    assert isinstance(error, InvalidInput)
    assert f"column 'b': {describe(cell.strip(chr(34)))} at data row {LONG + 1} " in error.detail
    assert "is not a decimal number" in error.detail


@pytest.mark.parametrize("cell", ["1e999", "-2e154"])
def test_an_overflow_past_the_first_rows_is_refused_naming_it(cell: str) -> None:
    error = refusal(long_table(cell))
    assert f"{cell} in column 'b' at data row {LONG + 1} " in error.detail and "overflow" in error.detail


def test_missing_cells_past_the_first_rows_are_missing_not_zero() -> None:
    table = read_used(long_table("NA", other=""))
    a, b = table["a"], table["b"]
    assert a.missing is not None and np.flatnonzero(a.missing).tolist() == [LONG + 1]
    assert b.missing is not None and np.flatnonzero(b.missing).tolist() == [LONG]
    assert np.isnan(b.values[LONG]) and b.values[LONG + 1] == 8 and a.values[LONG] == 3


def test_a_ragged_or_blank_row_past_the_first_rows_is_named() -> None:
    ragged = refusal(long_table("4,5"))
    assert f"data row {LONG + 1} that has 3 cells" in ragged.detail
    blank = refusal(b"a,b\n" + b"1,2\n" * LONG + b"\n3,4\n")
    assert f"data row {LONG + 1} that is blank" in blank.detail


# ---------------------------------------------------------------- the definition, cell by cell

#: Cells near the edge of the definition: numbers, lenient spellings, text and missing.
CELL = st.one_of(
    st.from_regex(NUMBER, fullmatch=True),
    st.sampled_from([*TEXT_CELLS, "", "NA", "1e999", "-2e154", "0", "-0", "1.5", "a", "b"]),
    st.text(alphabet='0123456789.eE+-_ xna,"\n', max_size=6),
    st.text(max_size=4).filter(lambda text: "\r" not in text),
)


def spell(cell: str, quote: bool) -> str:
    """Write a cell in CSV, quoted when asked or when it must be."""
    if quote or any(c in cell for c in ',"\n\r'):
        return '"' + cell.replace('"', '""') + '"'
    return cell


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(CELL, st.booleans()), min_size=1, max_size=12), st.booleans())
def test_cells_are_typed_as_the_decimal_definition_says(cells: list[tuple[str, bool]], crlf: bool) -> None:
    newline = "\r\n" if crlf else "\n"
    body = ("h,i" + newline + newline.join(f"{spell(c, q)},{k}" for k, (c, q) in enumerate(cells))).encode()
    present = [(k, c) for k, (c, _) in enumerate(cells) if c not in ("", "NA")]
    numbers = [(k, c) for k, c in present if NUMBER.fullmatch(c)]
    texts = [(k, c) for k, c in present if not NUMBER.fullmatch(c)]
    try:
        table: Table | None = read_used(body, "train")
    except InvalidInput as error:
        table = None
        detail = error.detail
    if numbers and texts:
        assert table is None
        fewer = texts if len(texts) <= len(numbers) else numbers
        assert f"at data row {fewer[0][0] + 1} " in detail
        return
    too_large = [k for k, c in numbers if not abs(float(c)) <= MAX_MAGNITUDE]
    if numbers and too_large:
        assert table is None and f"at data row {too_large[0] + 1} " in detail
        return
    assert table is not None, detail
    column = table["h"]
    assert table.rows == len(cells)
    missing = [c in ("", "NA") for c, _ in cells]
    assert (column.missing is None) == (not any(missing))
    if column.missing is not None:
        assert column.missing.tolist() == missing
    if texts:
        assert column.kind == "categorical"
        assert column.values.tolist() == [None if m else c for (c, _), m in zip(cells, missing, strict=True)]
    else:
        assert column.kind == "numeric"
        expected = [float("nan") if m else float(c) for (c, _), m in zip(cells, missing, strict=True)]
        assert np.array_equal(column.values, expected, equal_nan=True)


#: Cells as ``CELL``, without spaces or tabs: bodies that take the typed road.
UNSPACED = CELL.filter(lambda cell: " " not in cell and "\t" not in cell)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.lists(st.tuples(UNSPACED, st.booleans()), min_size=1, max_size=12))
def test_cells_past_the_first_rows_are_typed_as_the_decimal_definition_says(cells: list[tuple[str, bool]]) -> None:
    # The cells come after LONG rows of numbers in the same column, past the rows that
    # guess its type: pyarrow's reader converts them to float64 itself.
    lead = b"h,i\n" + b"0.5,0\n" * LONG
    body = lead + "\n".join(f"{spell(c, q)},{k}" for k, (c, q) in enumerate(cells)).encode()
    present = [(k, c) for k, (c, _) in enumerate(cells) if c not in ("", "NA")]
    texts = [(k, c) for k, c in present if not NUMBER.fullmatch(c)]
    too_large = [k for k, c in present if NUMBER.fullmatch(c) and not abs(float(c)) <= MAX_MAGNITUDE]
    try:
        table: Table | None = read_used(body, "train")
    except InvalidInput as error:
        table = None
        detail = error.detail
    if texts:
        assert table is None and f"at data row {LONG + texts[0][0] + 1} " in detail
        return
    if too_large:
        assert table is None and f"at data row {LONG + too_large[0] + 1} " in detail
        return
    assert table is not None, detail
    column = table["h"]
    assert column.kind == "numeric" and table.rows == LONG + len(cells)
    missing = [c in ("", "NA") for c, _ in cells]
    expected = [float("nan") if m else float(c) for (c, _), m in zip(cells, missing, strict=True)]
    assert np.array_equal(column.values[LONG:], expected, equal_nan=True)
    assert column.missing is None if not any(missing) else column.missing[LONG:].tolist() == missing


# ---------------------------------------------------------------- hostile bodies


HOSTILE = [
    pytest.param(b"a,b\n1," + b"x" * (50 << 20) + b"\n2,3\n", id="50MiB-text-cell"),
    pytest.param(b'a,b\n1,"' + b"9" * (50 << 20) + b'"\n2,3\n', id="50MiB-quoted-number"),
    pytest.param(b"a," + b"x" * (5 << 20) + b"\n2,3\n", id="5MiB-header-name"),
    pytest.param(b",".join(b"c%d" % j for j in range(1_000_000)) + b"\n" + b"1," * 999_999 + b"1\n", id="million-columns"),
    pytest.param(b'"",' * (1 << 20) + b"\n", id="million-quoted-names"),
    pytest.param(b"a,b\n" + b"1\n" * (5 << 20), id="many-short-rows"),
    pytest.param(b"a\n" + b"\n1" * (2 << 20), id="many-one-cell-rows"),
    pytest.param(b"a,b\n" + b"\r" * (5 << 20) + b"1,2", id="many-carriage-returns"),
    pytest.param(b"\x00" * (1 << 20), id="nul-bytes"),
    pytest.param(b"a,b\n1,\x00\n\x00,2\n", id="nul-cells"),
    pytest.param(b'"' * (5 << 20), id="quotes"),
    pytest.param(b'a\n' + b'""""' * (2 << 20), id="quote-pairs"),
    pytest.param(b'"' + b'a""' * (2 << 20) + b'"\n1\n', id="escaped-header-name"),
    pytest.param(b'"' + b"\n" * (5 << 20) + b'""",b\n1,2\n', id="line-ends-in-a-header-name"),
    pytest.param(b"\xef\xbb\xbf" * 1000, id="many-boms"),
    pytest.param(b"\xff" * 1000, id="not-utf8"),
    pytest.param(b"," * (5 << 20), id="commas"),
    pytest.param(b"a,b\n" + b"1,2" * (1 << 20) + b"\n", id="long-row"),
]  # fmt: skip


@pytest.mark.parametrize("body", HOSTILE)
def test_hostile_bodies_are_read_or_refused_as_input(body: bytes) -> None:
    try:
        table = read_csv(body, "train")
    except FitserveError as error:
        assert isinstance(error, (InvalidInput, MalformedBody))
        assert len(error.detail) < 1_000
    else:
        assert isinstance(table, Table)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64) | st.text(alphabet='a1,"\r\n \x00.eNA', max_size=64).map(str.encode))
def test_any_bytes_are_read_or_refused_as_input(body: bytes) -> None:
    try:
        read_csv(body, "test")
    except (InvalidInput, MalformedBody):
        pass
