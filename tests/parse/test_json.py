"""The JSON road (service/parse/json.py, syntax.py): per-field fallback, 400 details, query strings."""

from __future__ import annotations

import copy
import difflib
import json
from typing import Any

import falcon.testing
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import service
import service.parse.json
from service.errors import InvalidInput, MalformedBody
from service.parse.json import PlainFields, parse_json
from service.parse.rules import build_request
from service.settings import Limits, Settings

JSON = "application/json"
BODY: dict[str, Any] = {"X_train": [[1, 2], [2, 1], [3, 5], [4, 4]], "y_train": [1, 2, 3, 5], "X_test": [[1, 1]]}


@pytest.fixture
def exact_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The fields the exact reader is asked to read, in order."""
    seen: list[str] = []
    read_matrix, read_vector = service.parse.json.read_matrix, service.parse.json.read_vector

    def matrix(value: object, field: str, missing: bool = False) -> Any:
        seen.append(field)
        return read_matrix(value, field, missing)

    def vector(value: object, field: str, missing: bool = False) -> Any:
        seen.append(field)
        return read_vector(value, field, missing)

    monkeypatch.setattr(service.parse.json, "read_matrix", matrix)
    monkeypatch.setattr(service.parse.json, "read_vector", vector)
    return seen


def test_a_well_formed_body_reads_no_field_exactly(exact_reads: list[str]) -> None:
    parse_json(orjson.dumps({**BODY, "sample_weight": [1, 1, 2, 1]}), "predict", Limits())
    assert exact_reads == []


def test_only_the_field_simdjson_cannot_vouch_for_is_read_exactly(exact_reads: list[str]) -> None:
    body = {**BODY, "y_train": [1, 2, None, 5]}
    with pytest.raises(InvalidInput) as caught:
        parse_json(orjson.dumps(body), "predict", Limits())
    assert caught.value.field == "y_train" and "row 2" in caught.value.detail
    assert exact_reads == ["y_train"]


def test_a_rule_error_on_the_fast_road_is_raised_not_retried(exact_reads: list[str]) -> None:
    body = {**BODY, "y_train": [1, 2, 3]}
    with pytest.raises(InvalidInput) as caught:
        parse_json(orjson.dumps(body), "fit", Limits())
    assert caught.value.field == "y_train" and "3 rows" in caught.value.detail
    assert exact_reads == []  # the body was not validated a second time


def test_an_error_in_a_later_field_waits_for_the_earlier_fields() -> None:
    # X_test's null is found first (while reading), but X_train's nested array comes first in
    # the contract's order of fields, so it is the error reported.
    body = b'{"X_test": [[1, null]], "X_train": [[1, [2]], [3, 4], [5, 6]], "y_train": [1, 2, 3]}'
    with pytest.raises(InvalidInput) as caught:
        parse_json(body, "predict", Limits())
    assert caught.value.field == "X_train" and "row 0, column 1" in caught.value.detail


DEFECTS = {
    "null": None,
    "string": "1.5",
    "nested": [2.0],
    "bool": True,
    "huge": 1e300,
    "object": {"a": 1},
}


@st.composite
def damaged_bodies(draw: st.DrawFn) -> bytes:
    """A valid /predict body with one to three elements replaced by defects, and maybe a short field."""
    n, p = draw(st.integers(2, 6)), draw(st.integers(1, 3))
    finite = st.floats(-1e3, 1e3, allow_nan=False)
    body: dict[str, Any] = {
        "X_train": [[draw(finite) for _ in range(p)] for _ in range(n)],
        "y_train": [draw(finite) for _ in range(n)],
        "X_test": [[draw(finite) for _ in range(p)]],
        "sample_weight": [1.0] * n,
    }
    for _ in range(draw(st.integers(1, 3))):
        field = draw(st.sampled_from(sorted(body)))
        defect = copy.deepcopy(DEFECTS[draw(st.sampled_from(sorted(DEFECTS)))])
        values = body[field]
        i = draw(st.integers(0, len(values) - 1))
        if isinstance(values[i], list):
            values[i][draw(st.integers(0, len(values[i]) - 1))] = defect
        else:
            values[i] = defect
    if draw(st.booleans()):
        field = draw(st.sampled_from(["y_train", "sample_weight"]))
        body[field] = body[field][:-1]
    keys = draw(st.permutations(sorted(body)))
    return json.dumps({key: body[key] for key in keys}).encode()


def outcome(parse: Any) -> tuple[str, object]:
    """A parse's request arrays, or its error, in a form that compares exactly."""
    try:
        request = parse()
    except InvalidInput as exc:
        return ("error", (exc.detail, exc.field))
    arrays = [request.X_train, request.y_train, request.X_test, request.sample_weight]
    return ("request", [None if a is None else a.tobytes() for a in arrays])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=damaged_bodies())
def test_fast_and_exact_roads_report_the_same_first_error(body: bytes) -> None:
    limits = Limits()
    fast = outcome(lambda: parse_json(body, "predict", limits))
    exact = outcome(lambda: build_request(PlainFields(orjson.loads(body)), "predict", limits))
    assert fast == exact


# A body that is not JSON: the line, the column and the usual cause.


@pytest.mark.parametrize(
    ("body", "where", "cause"),
    [
        pytest.param(b'{"X_train": [[1], [NaN]], "y_train": [1, 2]}', "line 1, column 20", "NaN and Infinity", id="NaN"),
        pytest.param(b'{"X_train": [[1],\n [Infinity]],\n "y_train": [1, 2]}', "line 2, column 3", "NaN and Infinity", id="Infinity"),
        pytest.param(b'{"X_train": [[-Infinity]], "y_train": [1]}', "line 1, column", "NaN and Infinity", id="minus-Infinity"),
        pytest.param(b'{"X_train": [[1], [2]], "y_train": [1, 2],}', "line 1, column 42", "trailing comma", id="object-comma"),
        pytest.param(b'{"X_train": [[1], [2],\n  ], "y_train": [1, 2]}', "line 1, column", "trailing comma", id="array-comma"),
        pytest.param(b"{'X_train': [[1]], 'y_train': [1]}", "line 1, column 2", "single quotes", id="single-quotes"),
        pytest.param(b'{"X_train": [[1, 2', "line 1, column 19", "", id="truncated"),
    ],
)
def test_malformed_json_says_where_and_why(body: bytes, where: str, cause: str) -> None:
    with pytest.raises(MalformedBody) as caught:
        parse_json(body, "fit", Limits())
    detail = caught.value.detail
    assert where in detail
    if cause:
        assert cause in detail
    else:
        assert "(" not in detail  # no cause named where none was found
    assert "X_train" not in detail  # the body is not echoed


def test_malformed_json_over_http_is_a_400_with_the_position() -> None:
    client = falcon.testing.TestClient(service.create_app(Settings()))
    answer = client.simulate_post("/fit", body=b'{"X_train": [[1], [NaN]]}', headers={"Content-Type": JSON})
    assert answer.status_code == 400
    assert "line 1, column 20" in answer.json["detail"] and "NaN" in answer.json["detail"]


# Query parameters on a JSON body.


@pytest.mark.parametrize("query", ["statistics=true", "target=price", "x=1&statistics=true"])
def test_query_parameters_on_a_json_body_are_refused(query: str) -> None:
    client = falcon.testing.TestClient(service.create_app(Settings()))
    answer = client.simulate_post("/fit", body=orjson.dumps(BODY), query_string=query, headers={"Content-Type": JSON})
    assert answer.status_code == 422
    first = query.split("=")[0]
    assert answer.json["field"] == first and f"'{first}'" in answer.json["detail"]


def test_a_json_body_without_query_parameters_is_answered() -> None:
    client = falcon.testing.TestClient(service.create_app(Settings()))
    answer = client.simulate_post("/fit", body=orjson.dumps(BODY), headers={"Content-Type": JSON})
    assert answer.status_code == 200


# "Did you mean": bounded work for any name.


@pytest.fixture
def compared(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The lengths of the names difflib is asked to compare."""
    lengths: list[int] = []
    close = difflib.get_close_matches

    def recording(word: str, possibilities: Any, *args: Any, **kwargs: Any) -> list[str]:
        lengths.append(len(word))
        return close(word, possibilities, *args, **kwargs)

    monkeypatch.setattr(difflib, "get_close_matches", recording)
    return lengths


def test_a_short_unknown_field_gets_a_suggestion(compared: list[int]) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_json(b'{"X_tset": [[1]], "X_train": [[1]], "y_train": [1]}', "fit", Limits())
    assert "Did you mean 'X_test'?" in caught.value.detail
    assert compared == [6]


HUGE = "X" * (8 * 2**20)
LONG = "X" * 2000  # a part name: multipart headers are bounded by the parser


@pytest.mark.parametrize(
    "send",
    [
        pytest.param(
            lambda client: client.simulate_post(
                "/fit", body=b'{"' + HUGE.encode() + b'": 1}', headers={"Content-Type": JSON}
            ),
            id="json-field",
        ),
        pytest.param(
            lambda client: client.simulate_post(
                "/fit", body=b"a,y\n1,2\n2,3\n", query_string=HUGE + "=1", headers={"Content-Type": "text/csv"}
            ),
            id="query-parameter",
        ),
        pytest.param(
            lambda client: client.simulate_post(
                "/fit",
                body=b'--b\r\nContent-Disposition: form-data; name="' + LONG.encode() + b'"\r\n\r\nx\r\n--b--\r\n',
                headers={"Content-Type": "multipart/form-data; boundary=b"},
            ),
            id="form-part",
        ),
    ],
)
def test_a_huge_unknown_name_is_refused_without_comparing_it(compared: list[int], send: Any) -> None:
    client = falcon.testing.TestClient(service.create_app(Settings()))
    answer = send(client)
    assert answer.status_code == 422
    assert len(answer.json["field"]) <= 40 and len(answer.json["detail"]) < 1000
    assert all(length <= 64 for length in compared)
