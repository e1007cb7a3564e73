"""The parse stage on its own: the fast and exact roads, and the parser's resources."""

from __future__ import annotations

import sys

import numpy as np
import orjson
import pytest

import service.parse.json
from service.body import Body
from service.errors import InvalidInput, MalformedBody
from service.parse.json import count_byte, parse_json
from service.parse.shared_parser import PARSER, SharedParser
from service.settings import Limits

SMALL = b'{"X_train": [[1, 2], [2, 1], [3, 5]], "y_train": [1, 2, 3], "X_test": [[1, 1]]}'


def test_body_holder_lets_go_of_its_bytes() -> None:
    holder = Body(SMALL)
    request = parse_json(holder, "predict", Limits())
    assert holder.data == b""
    assert request.X_train is not None and request.X_train.shape == (3, 2)


@pytest.mark.parametrize("limit", [10, 16 * 2**20], ids=["own-parser", "shared-parser"])
def test_the_body_is_let_go_before_its_arrays_are_read(monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
    # simdjson holds its own copy once it has parsed: while the arrays are exported, the
    # only reference to the body left should be this test's (the peak memory of a large
    # request is the body, simdjson's copy and its parse tree, not the arrays on top).
    monkeypatch.setattr(SharedParser, "REUSE_LIMIT", limit)
    body = bytes(bytearray(SMALL))
    held: list[int] = []
    export = service.parse.json.buffer

    def counting_export(array: object, size: int) -> np.ndarray:
        held.append(sys.getrefcount(body))
        return export(array, size)  # type: ignore[arg-type]

    monkeypatch.setattr(service.parse.json, "buffer", counting_export)
    parse_json(Body(body), "predict", Limits())
    baseline = sys.getrefcount(body)  # the local name and getrefcount's argument
    assert held and set(held) == {baseline}


def test_shared_parser_recovers_from_a_document_still_referenced() -> None:
    with PARSER.parse(b'{"a": [1, 2]}') as document:
        stale = document  # outlives its block, as a traceback might keep it
    old = PARSER.parser
    request = parse_json(SMALL, "predict", Limits())
    assert PARSER.parser is not old
    assert request.y_train is not None and request.y_train[:, 0].tolist() == [1.0, 2.0, 3.0]
    del stale


def test_large_bodies_get_a_parser_of_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SharedParser, "REUSE_LIMIT", 10)
    shared_before = PARSER.parser
    request = parse_json(SMALL, "predict", Limits())
    assert PARSER.parser is shared_before
    assert request.X_test is not None and request.X_test.tolist() == [[1.0, 1.0]]


@pytest.mark.parametrize("limit", [10, 16 * 2**20], ids=["own-parser", "shared-parser"])
def test_refused_json_is_400_on_either_parser(monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
    monkeypatch.setattr(SharedParser, "REUSE_LIMIT", limit)
    with pytest.raises(MalformedBody):
        parse_json(b'{"X_train": [1, 2', "fit", Limits())


def test_nested_array_inside_a_row_is_caught_by_the_bracket_count() -> None:
    # simdjson flattens [2] into the row's buffer; only counting brackets tells.
    with pytest.raises(InvalidInput) as caught:
        parse_json(b'{"X_train": [[1, [2]], [3, 4]], "y_train": [1, 2]}', "fit", Limits())
    assert "row 0, column 1" in caught.value.detail


@pytest.mark.parametrize("block", [1, 3, 7, 2**18])
def test_brackets_are_counted_across_blocks(block: int) -> None:
    data = b'[{"a": [[1, 2], [3]]}, "[", [], "x"]' * 5
    assert count_byte(data, ord("["), block) == data.count(b"[") == 30
    assert count_byte(b"", ord("["), block) == 0


def test_a_bracket_written_as_an_escape_is_counted() -> None:
    # "\\u005b" in a string is a [ the bytes hide; without counting it, the nested array
    # below would pass as the row [1, 2].
    body = rb'{"X_train": [[1, [2]], [3, 4]], "y_train": [1, 2], "missing": "\u005b"}'
    with pytest.raises(InvalidInput) as caught:
        parse_json(body, "fit", Limits())
    assert "row 0, column 1" in caught.value.detail


def test_big_integers_take_the_exact_road() -> None:
    body = orjson.dumps({"X_train": [[1], [2], [3]], "y_train": [1, 2, 3]}).replace(b"[3]]", b"[30000000000000000000000]]")
    request = parse_json(body, "fit", Limits())
    assert request.X_train is not None and request.X_train[2, 0] == 3e22


def test_fast_road_arrays_are_float64_and_contiguous() -> None:
    request = parse_json(SMALL, "predict", Limits())
    for array in (request.X_train, request.y_train, request.X_test):
        assert array is not None and array.dtype == np.float64 and array.flags["C_CONTIGUOUS"]
