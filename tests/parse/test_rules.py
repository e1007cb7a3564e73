"""Validation and errors of the JSON API: the contract's request fields and its errors.

One table of bad inputs, each row with an id: the body, the endpoint, the status and the
field at fault. Then: the app keeps serving after each of them, and properties that
hold for any input (no 5xx, the fast and the exact parser agree, exact data gives back
its coefficients, row order does not change a fit, one prediction per query row).
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import falcon.testing
import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import service
from service.errors import InvalidInput
from service.parse.json import PlainFields, parse_json
from service.parse.rules import FIELDS, build_request
from service.request import FitRequest
from service.settings import Settings

PROBLEM_JSON = "application/problem+json"
JSON = "application/json"

SMALL_BODY = Settings(max_body_mb=0.001)
LIMITS = Settings(max_features=3, max_cells=10, max_prediction_rows=2)
APP_SETTINGS = {"default": Settings(), "small": SMALL_BODY, "limits": LIMITS}
BODY_LIMIT = SMALL_BODY.max_body_bytes

TRAIN: dict[str, Any] = {"X_train": [[1, 2], [2, 1], [3, 5], [4, 4]], "y_train": [1, 2, 3, 5]}
PREDICT: dict[str, Any] = {**TRAIN, "X_test": [[4, 4], [0, 1]]}
NAMED: dict[str, Any] = {
    "X_train": {"age": [30, 40, 50, 60], "height": [1.7, 1.8, 1.6, 1.9]},
    "y_train": [1, 2, 3, 5],
}
MODEL: dict[str, Any] = {"coef": [1.5, -0.5], "intercept": 2.0}
MISSING = object()


class Number(str):
    """JSON number text placed verbatim in a body (for numbers Python cannot hold as floats)."""


@dataclass(frozen=True)
class Raw:
    """A body given as bytes, with its content type (None: no Content-Type header)."""

    data: bytes
    content_type: str | None = JSON


@dataclass(frozen=True)
class Bad:
    """One bad request and what must come back."""

    body: Any
    status: int
    field: str | None = None
    path: str = "/fit"
    method: str = "POST"
    at: tuple[int | str, ...] = ()  # the row (and column) the detail must name
    mentions: tuple[str, ...] = ()  # more text the detail must hold
    app: str = "default"


def encode(value: Any) -> bytes:
    """Encode a body as JSON, writing each ``Number`` verbatim."""
    numbers: list[str] = []

    def swap(item: Any) -> Any:
        if isinstance(item, Number):
            numbers.append(str(item))
            return f"@number{len(numbers) - 1}@"
        if isinstance(item, list):
            return [swap(v) for v in item]
        if isinstance(item, dict):
            return {k: swap(v) for k, v in item.items()}
        return item

    text = json.dumps(swap(value))
    for i, number in enumerate(numbers):
        text = text.replace(f'"@number{i}@"', number)
    return text.encode()


def changed(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of ``base`` with fields replaced, added, or removed (``MISSING``)."""
    body = dict(base)
    for name, value in changes.items():
        if value is MISSING:
            del body[name]
        else:
            body[name] = value
    return body


def fit(**changes: Any) -> dict[str, Any]:
    """A valid /fit body, changed."""
    return changed(TRAIN, **changes)


def predict(**changes: Any) -> dict[str, Any]:
    """A valid /predict body, changed."""
    return changed(PREDICT, **changes)


def padded(size: int) -> bytes:
    """A valid JSON body of exactly ``size`` bytes (padded with spaces)."""
    data = encode(TRAIN)
    assert len(data) <= size
    return data + b" " * (size - len(data))


# Bad element values: where a number belongs. (id, value, text the detail must hold)
ELEMENTS: list[tuple[str, Any, tuple[str, ...]]] = [
    ("null", None, ("null",)),
    ("true", True, ("true",)),
    ("string-1.5", "1.5", ('"1.5"',)),
    ("nested-list", [5], ("list",)),
    ("object", {"a": 5}, ("object",)),
    ("1e400", Number("1e400"), ()),
    ("1e200-square-overflows", 1e200, ()),
    ("integer-10**400", Number("1" + "0" * 400), ()),
    ("minus-integer-10**400", Number("-1" + "0" * 400), ()),
]


def element_rows() -> Iterator[Any]:
    """A bad element in each numeric field, at a known row and column."""
    for name, value, mentions in ELEMENTS:
        yield pytest.param(
            Bad(
                fit(X_train=[[1, 2], [2, 1], [3, value], [4, 4]]),
                422,
                "X_train",
                at=(2, 1),
                mentions=mentions,
            ),
            id=f"X_train-{name}",
        )
        yield pytest.param(
            Bad(fit(y_train=[1, 2, value, 5]), 422, "y_train", at=(2,), mentions=mentions),
            id=f"y_train-{name}",
        )
        yield pytest.param(
            Bad(
                predict(X_test=[[4, 4], [value, 1]]), 422, "X_test", "/predict", at=(1, 0), mentions=mentions
            ),
            id=f"X_test-{name}",
        )
        yield pytest.param(
            Bad(fit(sample_weight=[1, 1, 1, value]), 422, "sample_weight", at=(3,), mentions=mentions),
            id=f"sample_weight-{name}",
        )


def option_rows() -> Iterator[Any]:
    """Options of the wrong type or out of range."""
    for flag in ("fit_intercept", "positive", "statistics"):
        for name, value in (("1", 1), ("string-true", "true"), ("null", None)):
            yield pytest.param(Bad(fit(**{flag: value}), 422, flag), id=f"{flag}-{name}")
    for name, value in (
        ("0", 0),
        ("1", 1),
        ("1.5", 1.5),
        ("string-0.9", "0.9"),
        ("true", True),
        ("null", None),
        ("negative", -0.5),
        ("1e400", Number("1e400")),
    ):
        yield pytest.param(Bad(predict(level=value), 422, "level", "/predict"), id=f"level-{name}")


CASES = [
    # 400: the body is not parseable.
    pytest.param(Bad(Raw(b'{"X_train": [[1, 2'), 400), id="malformed-truncated"),
    pytest.param(Bad(Raw(b""), 400), id="empty-body"),
    pytest.param(Bad(Raw(b"  \n "), 400), id="whitespace-only"),
    pytest.param(Bad(Raw(b'{"X_train": [[1]], "y_train": [1], "note": "\xff\xfe"}'), 400), id="invalid-utf8"),
    pytest.param(Bad(Raw(encode(TRAIN).decode().encode("utf-16")), 400), id="utf16-body"),
    pytest.param(Bad(Raw(encode(TRAIN)[:-1] + b', "note": "\\ud800"}'), 400), id="unpaired-surrogate"),
    pytest.param(Bad(Raw(encode(TRAIN)[:-1] + b', "\\udc00": 1}'), 400), id="unpaired-low-surrogate-key"),
    pytest.param(
        Bad(Raw(b'{"X_train": [[1e400]], "y_train": [1], "note": "\\ud800"}'), 400),
        id="unpaired-surrogate-with-1e400",
    ),
    pytest.param(Bad(Raw(b'{"X_train": [[1], [NaN]], "y_train": [1, 2]}'), 400), id="NaN-literal"),
    pytest.param(Bad(Raw(b'{"X_train": [[1], [Infinity]], "y_train": [1, 2]}'), 400), id="Infinity-literal"),
    pytest.param(
        Bad(Raw(b'{"X_train": [[1], [-Infinity]], "y_train": [1, 2]}'), 400), id="minus-Infinity-literal"
    ),
    pytest.param(Bad(Raw(b'{"X_train": [[1e400], [NaN]], "y_train": [1, 2]}'), 400), id="NaN-with-1e400"),
    pytest.param(Bad(Raw(encode(TRAIN) + b" x"), 400), id="trailing-garbage"),
    pytest.param(Bad(Raw(encode(TRAIN) + b"{}"), 400), id="two-documents"),
    pytest.param(Bad(Raw(b'{"X_train": [[1], [2]], "y_train": [1, 2],}'), 400), id="trailing-comma"),
    pytest.param(Bad(Raw(b"{'X_train': [[1]], 'y_train': [1]}"), 400), id="single-quotes"),
    pytest.param(Bad(Raw(b'{"X_train": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"), 400), id="too-deep"),
    # 404 / 405
    pytest.param(Bad(fit(), 404, path="/fitt"), id="404-unknown-path"),
    pytest.param(Bad(None, 404, path="/", method="GET"), id="404-root"),
    pytest.param(Bad(None, 405, method="GET"), id="405-GET-fit"),
    pytest.param(Bad(predict(), 405, path="/predict", method="PUT"), id="405-PUT-predict"),
    pytest.param(Bad(None, 405, method="DELETE"), id="405-DELETE-fit"),
    pytest.param(Bad(fit(), 405, path="/health"), id="405-POST-health"),
    # 413: over the body limit (Content-Length declared).
    pytest.param(
        Bad(Raw(padded(BODY_LIMIT + 1)), 413, mentions=("max_body_mb",), app="small"), id="413-one-byte-over"
    ),
    pytest.param(
        Bad(Raw(padded(4 * BODY_LIMIT)), 413, path="/predict", mentions=("max_body_mb",), app="small"),
        id="413-predict",
    ),
    # 415: a content type the endpoints do not take; the detail says which they take.
    pytest.param(Bad(Raw(encode(TRAIN), None), 415, mentions=(JSON,)), id="415-no-content-type"),
    pytest.param(Bad(Raw(encode(TRAIN), "text/plain"), 415, mentions=(JSON,)), id="415-text-plain"),
    pytest.param(
        Bad(Raw(encode(TRAIN), "application/x-www-form-urlencoded"), 415, mentions=(JSON, "--json")),
        id="415-form-urlencoded-curl-d",
    ),
    pytest.param(Bad(Raw(encode(TRAIN), "application/xml"), 415, mentions=(JSON,)), id="415-xml"),
    # 422: the body is not an object.
    pytest.param(Bad([TRAIN], 422), id="body-a-list"),
    pytest.param(Bad("X_train", 422), id="body-a-string"),
    pytest.param(Bad(3, 422), id="body-a-number"),
    pytest.param(Bad(None, 422), id="body-null"),
    # 422: missing and unknown fields.
    pytest.param(Bad(fit(X_train=MISSING), 422, "X_train"), id="missing-X_train"),
    pytest.param(Bad(predict(X_train=MISSING), 422, "X_train", "/predict"), id="missing-X_train-predict"),
    pytest.param(Bad(fit(y_train=MISSING), 422, "y_train"), id="missing-y_train"),
    pytest.param(Bad(predict(X_test=MISSING), 422, "X_test", "/predict"), id="missing-X_test-predict"),
    pytest.param(Bad({}, 422, "X_train"), id="empty-object-body"),
    pytest.param(
        Bad(fit(X_tset=[[1, 1]]), 422, "X_tset", mentions=("X_test",)),
        id="unknown-field-X_tset-suggests-X_test",
    ),
    pytest.param(Bad(fit(Xtrain=[[1, 1]]), 422, "Xtrain"), id="unknown-field-Xtrain"),
    # 422: elements that are not finite numbers with a finite square.
    *element_rows(),
    pytest.param(
        Bad(
            fit(X_train=[[1, 2], [2, None], [3, "x"], [4, 4]]), 422, "X_train", at=(1, 1), mentions=("null",)
        ),
        id="X_train-first-bad-element-reported",
    ),
    pytest.param(
        Bad(
            fit(X_train=[{"a": 1, "b": 2}, {"a": 2, "b": None}, {"a": 3, "b": 5}, {"a": 4, "b": 4}]),
            422,
            "X_train",
            at=(1, "'b'"),
        ),
        id="X_train-records-null-names-column",
    ),
    pytest.param(
        Bad(fit(X_train={"a": [1, 2, 3, 4], "b": [1, True, 3, 4]}), 422, "X_train", at=(1, "'b'")),
        id="X_train-columns-true-names-column",
    ),
    # 422: shapes.
    pytest.param(
        Bad(fit(X_train=[[1, 2], [2], [3, 5], [4, 4]]), 422, "X_train", at=(1,)), id="X_train-ragged"
    ),
    pytest.param(Bad(fit(X_train=[]), 422, "X_train"), id="X_train-empty-list"),
    pytest.param(Bad(fit(X_train=[[]]), 422, "X_train"), id="X_train-empty-row"),
    pytest.param(Bad(fit(X_train={}), 422, "X_train"), id="X_train-empty-object"),
    pytest.param(Bad(fit(X_train=[{}]), 422, "X_train"), id="X_train-empty-record"),
    pytest.param(Bad(fit(X_train=5), 422, "X_train"), id="X_train-a-number"),
    pytest.param(Bad(fit(X_train="[[1, 2]]"), 422, "X_train"), id="X_train-a-string"),
    pytest.param(
        Bad(fit(X_train=[[1, 2], 3, [3, 5], [4, 4]]), 422, "X_train", at=(1,)), id="X_train-row-not-list"
    ),
    pytest.param(
        Bad(fit(X_train={"a": [1, 2, 3, 4], "b": [1, 2, 3]}), 422, "X_train", mentions=("'b'",)),
        id="X_train-columns-of-different-lengths",
    ),
    pytest.param(
        Bad(
            fit(X_train=[{"a": 1, "b": 2}, {"a": 2}, {"a": 3, "b": 5}, {"a": 4, "b": 4}]),
            422,
            "X_train",
            mentions=("'b'",),
        ),
        id="X_train-records-key-missing",
    ),
    pytest.param(
        Bad(fit(X_train=[{"a": 1}, {"a": 2, "c": 1}, {"a": 3}, {"a": 4}]), 422, "X_train", mentions=("'c'",)),
        id="X_train-records-key-extra",
    ),
    pytest.param(Bad(fit(y_train=[1, 2, 3]), 422, "y_train"), id="y_train-too-short"),
    pytest.param(Bad(fit(y_train=[1, 2, 3, 5, 8]), 422, "y_train"), id="y_train-too-long"),
    pytest.param(Bad(fit(y_train=[]), 422, "y_train"), id="y_train-empty-list"),
    pytest.param(Bad(fit(y_train={"a": [1, 2]}), 422, "y_train"), id="y_train-named-column-too-short"),
    pytest.param(Bad(fit(y_train=[[1, 2], [2, 3], [3]]), 422, "y_train"), id="y_train-ragged"),
    pytest.param(Bad(fit(y_train=2.5), 422, "y_train"), id="y_train-a-number"),
    pytest.param(Bad(fit(sample_weight=[1, 1, 1]), 422, "sample_weight"), id="sample_weight-too-short"),
    pytest.param(Bad(fit(sample_weight=[1, 1, 1, 1, 1]), 422, "sample_weight"), id="sample_weight-too-long"),
    pytest.param(
        Bad(fit(sample_weight=[1, -1, 1, 1]), 422, "sample_weight", at=(1,)), id="sample_weight-negative"
    ),
    pytest.param(Bad(fit(sample_weight=[0, 0, 0, 0]), 422, "sample_weight"), id="sample_weight-all-zeros"),
    pytest.param(Bad(fit(sample_weight=[]), 422, "sample_weight"), id="sample_weight-empty"),
    pytest.param(Bad(fit(sample_weight=1), 422, "sample_weight"), id="sample_weight-a-number"),
    pytest.param(
        Bad(fit(sample_weight=[[1], [1], [1], [1]]), 422, "sample_weight", at=(0,)), id="sample_weight-rows"
    ),
    pytest.param(Bad(predict(X_test=[[1, 2, 3]]), 422, "X_test", "/predict"), id="X_test-too-wide"),
    pytest.param(Bad(predict(X_test=[[1]]), 422, "X_test", "/predict"), id="X_test-too-narrow"),
    pytest.param(Bad(predict(X_test=[1, 2]), 422, "X_test", "/predict"), id="X_test-flat-for-two-features"),
    pytest.param(Bad(predict(X_test=[[1, 2], [3]]), 422, "X_test", "/predict", at=(1,)), id="X_test-ragged"),
    pytest.param(Bad(predict(X_test=[]), 422, "X_test", "/predict"), id="X_test-empty-list"),
    pytest.param(Bad(predict(X_test={}), 422, "X_test", "/predict"), id="X_test-empty-object"),
    pytest.param(
        Bad(changed(NAMED, X_test={"age": [35]}), 422, "X_test", "/predict", mentions=("'height'",)),
        id="X_test-named-missing-name",
    ),
    pytest.param(
        Bad(
            changed(NAMED, X_test=[{"age": 35, "height": 1.7, "weight": 70}]),
            422,
            "X_test",
            "/predict",
            mentions=("'weight'",),
        ),
        id="X_test-named-extra-name",
    ),
    pytest.param(
        Bad(predict(X_test={"a": [1], "b": [2]}), 422, "X_test", "/predict"),
        id="X_test-named-X_train-unnamed",
    ),
    pytest.param(
        Bad(changed(NAMED, X_test=[{"age": 35, "height": 1.7}, {"age": 36}]), 422, "X_test", "/predict"),
        id="X_test-records-different-keys",
    ),
    # 422: interval.
    pytest.param(Bad(predict(interval="always"), 422, "interval", "/predict"), id="interval-unknown"),
    pytest.param(Bad(predict(interval="Confidence"), 422, "interval", "/predict"), id="interval-wrong-case"),
    pytest.param(Bad(predict(interval=1), 422, "interval", "/predict"), id="interval-a-number"),
    pytest.param(Bad(fit(interval="confidence"), 422, "interval"), id="interval-confidence-without-X_test"),
    pytest.param(Bad(fit(interval="prediction"), 422, "interval"), id="interval-prediction-without-X_test"),
    *option_rows(),
    # 422: model.
    pytest.param(Bad({"model": MODEL, "X_test": [[1, 2]]}, 422, "model"), id="model-on-fit"),
    *(
        pytest.param(
            Bad(
                changed({"model": MODEL, "X_test": [[1, 2]]}, **{name: value}),
                422,
                "model",
                "/predict",
                mentions=(name,),
            ),
            id=f"model-with-{name}",
        )
        for name, value in (
            ("X_train", TRAIN["X_train"]),
            ("y_train", TRAIN["y_train"]),
            ("sample_weight", [1, 1, 1, 1]),
            ("statistics", True),
            ("interval", "confidence"),
        )
    ),
    pytest.param(Bad({"model": MODEL}, 422, "X_test", "/predict"), id="model-without-X_test"),
    pytest.param(
        Bad({"model": {"intercept": 1.0}, "X_test": [[1, 2]]}, 422, "model", "/predict"), id="model-no-coef"
    ),
    pytest.param(
        Bad({"model": {"coef": [1, 2]}, "X_test": [[1, 2]]}, 422, "model", "/predict"),
        id="model-no-intercept",
    ),
    pytest.param(
        Bad({"model": {"coef": ["1", "2"], "intercept": 0}, "X_test": [[1, 2]]}, 422, "model", "/predict"),
        id="model-coef-of-strings",
    ),
    pytest.param(
        Bad(
            {"model": {"coef": [[1, 2], [3, 4]], "intercept": [1]}, "X_test": [[1, 2]]},
            422,
            "model",
            "/predict",
        ),
        id="model-intercept-length-mismatch",
    ),
    pytest.param(
        Bad({"model": {"coef": [1, 2], "intercept": [1, 2]}, "X_test": [[1, 2]]}, 422, "model", "/predict"),
        id="model-intercept-list-for-one-target",
    ),
    pytest.param(
        Bad({"model": {**MODEL, "feature_names": ["a"]}, "X_test": [[1, 2]]}, 422, "model", "/predict"),
        id="model-feature_names-wrong-count",
    ),
    pytest.param(Bad({"model": [1, 2], "X_test": [[1, 2]]}, 422, "model", "/predict"), id="model-a-list"),
    pytest.param(
        Bad({"model": MODEL, "X_test": [[1, 2, 3]]}, 422, "X_test", "/predict"), id="model-X_test-too-wide"
    ),
    # 422: the first failure, in the order of the table of fields, is the one reported.
    pytest.param(
        Bad(fit(X_train=[[1, None]], y_train=[None]), 422, "X_train"), id="first-X_train-before-y_train"
    ),
    pytest.param(
        Bad(fit(X_train=[[1, None]], y_train=MISSING), 422, "X_train"), id="first-X_train-before-missing-y"
    ),
    pytest.param(
        Bad(fit(y_train=[1, 2, 3, "5"], sample_weight=[-1, 1, 1, 1]), 422, "y_train"),
        id="first-y_train-before-sample_weight",
    ),
    pytest.param(
        Bad(fit(y_train=[1, 2, 3], sample_weight=[1, 1]), 422, "y_train"),
        id="first-y_train-length-before-weights",
    ),
    pytest.param(
        Bad(predict(X_test=[[1, 2, 3]], sample_weight=[-1, 1, 1, 1]), 422, "X_test", "/predict"),
        id="first-X_test-before-sample_weight",
    ),
    pytest.param(
        Bad(fit(sample_weight=[1], fit_intercept="yes"), 422, "sample_weight"),
        id="first-sample_weight-before-options",
    ),
    pytest.param(
        Bad(fit(fit_intercept=1, positive=1), 422, "fit_intercept"), id="first-fit_intercept-before-positive"
    ),
    pytest.param(
        Bad(fit(statistics=1, interval="x"), 422, "statistics"), id="first-statistics-before-interval"
    ),
    pytest.param(
        Bad(predict(interval="x", level=2), 422, "interval", "/predict"), id="first-interval-before-level"
    ),
    # 422: size limits, each named with its setting.
    pytest.param(
        Bad(
            fit(X_train=[[1, 2, 3, 4]] * 2, y_train=[1, 2]),
            422,
            "X_train",
            mentions=("max_features",),
            app="limits",
        ),
        id="limit-max_features",
    ),
    pytest.param(
        Bad(fit(X_train=[[1, 2, 3]] * 4), 422, "X_train", mentions=("max_cells",), app="limits"),
        id="limit-max_cells",
    ),
    pytest.param(
        Bad(fit(y_train=[[1, 2, 3, 4]] * 4), 422, "y_train", mentions=("max_features",), app="limits"),
        id="limit-max_features-targets",
    ),
    pytest.param(
        Bad(
            predict(X_test=[[1, 2]] * 3),
            422,
            "X_test",
            "/predict",
            mentions=("max_prediction_rows",),
            app="limits",
        ),
        id="limit-max_prediction_rows",
    ),
]


@pytest.fixture
def clients(client: falcon.testing.TestClient) -> dict[str, falcon.testing.TestClient]:
    """Test clients by name: the default app, a small body limit, small size limits."""
    return {
        "default": client,
        "small": falcon.testing.TestClient(service.create_app(SMALL_BODY)),
        "limits": falcon.testing.TestClient(service.create_app(LIMITS)),
    }


def send(client: falcon.testing.TestClient, bad: Bad) -> falcon.testing.Result:
    """Send one bad request."""
    if bad.body is None and bad.method != "POST":
        return client.simulate_request(bad.method, bad.path)
    if isinstance(bad.body, Raw):
        data, content_type = bad.body.data, bad.body.content_type
    else:
        data, content_type = encode(bad.body), JSON
    headers = {"Content-Type": content_type} if content_type is not None else {}
    return client.simulate_request(bad.method, bad.path, body=data, headers=headers)


def assert_problem(response: falcon.testing.Result, status: int, field: str | None) -> str:
    """Check a problem+json answer; return its detail."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = orjson.loads(response.content)
    expected_keys = {"title", "status", "detail", "request_id"} | ({"field"} if field is not None else set())
    assert set(problem) == expected_keys, problem
    assert problem["request_id"] == response.headers["x-request-id"]
    assert problem["status"] == status
    assert isinstance(problem["title"], str) and problem["title"]
    assert problem.get("field") == field
    detail = problem["detail"]
    assert isinstance(detail, str)
    assert len(detail) >= 20 and not detail[0].islower(), detail
    assert detail.endswith(".") and not detail.endswith(".."), detail
    assert "Traceback" not in detail
    if field is not None:
        assert field in detail, detail
    return detail


@pytest.mark.parametrize("bad", CASES)
def test_bad_input_is_a_problem(clients: dict[str, falcon.testing.TestClient], bad: Bad) -> None:
    """Each bad input gets its status, problem+json, the field at fault and a sentence naming it."""
    detail = assert_problem(send(clients[bad.app], bad), bad.status, bad.field)
    if bad.at:
        assert f"row {bad.at[0]}" in detail, detail
    if len(bad.at) == 2:
        assert f"column {bad.at[1]}" in detail, detail
    for text in bad.mentions:
        assert text in detail, detail


def test_the_table_is_large() -> None:
    """The table covers at least fifty bad inputs, each with its own id."""
    ids = [case.id for case in CASES]
    assert len(ids) >= 50
    assert len(set(ids)) == len(ids)


def test_app_keeps_serving_after_each_bad_input() -> None:
    """A valid request succeeds after every bad one, on the same app."""
    apps = {name: falcon.testing.TestClient(service.create_app(s)) for name, s in APP_SETTINGS.items()}
    for case in CASES:
        bad = case.values[0]
        assert send(apps[bad.app], bad).status_code >= 400
        answer = apps[bad.app].simulate_post("/predict", json=predict())
        assert answer.status_code == 200, (case.id, answer.text)
        assert len(answer.json["predictions"]) == 2


def test_body_at_the_limit_is_taken() -> None:
    """A body of exactly the limit is read and fitted (the limit is not off by one)."""
    client = falcon.testing.TestClient(service.create_app(SMALL_BODY))
    answer = client.simulate_post("/fit", body=padded(BODY_LIMIT), headers={"Content-Type": JSON})
    assert answer.status_code == 200, answer.text


@pytest.mark.live
def test_chunked_body_over_the_limit_is_413() -> None:
    """A body sent without Content-Length (chunked) over the limit is a 413 in problem+json.

    Falcon's TestClient cannot send a body without Content-Length, so this goes through waitress.
    """
    with service.serve_in_background(port=0, max_body_mb=SMALL_BODY.max_body_mb) as server:
        url = urllib.parse.urlsplit(server.url)
        connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10)
        try:
            body = padded(4 * BODY_LIMIT)
            chunks = iter([body[:BODY_LIMIT], body[BODY_LIMIT:]])
            connection.request("POST", "/fit", body=chunks, headers={"Content-Type": JSON})
            response = connection.getresponse()
            assert response.status == 413
            assert response.getheader("Content-Type") == PROBLEM_JSON
            problem = orjson.loads(response.read())
            assert problem["status"] == 413 and "max_body_mb" in problem["detail"]
        finally:
            connection.close()


# Properties.

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=20,
)


@pytest.fixture(scope="module")
def shared() -> falcon.testing.TestClient:
    """One client of the default app for the property tests (hypothesis reuses it)."""
    return falcon.testing.TestClient(service.create_app(Settings()))


PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(
    value=JSON_VALUES,
    name=st.sampled_from([*FIELDS, "X_tset", None]),
    endpoint=st.sampled_from(["/fit", "/predict"]),
)
def test_any_json_value_in_any_field_is_answered(
    shared: falcon.testing.TestClient, value: Any, name: str | None, endpoint: str
) -> None:
    """Any JSON value in any field (or as the whole body) gets a status below 500, problem+json if an error."""
    body = value if name is None else {**PREDICT, name: value}
    data = json.dumps(body).encode()
    response = shared.simulate_post(endpoint, body=data, headers={"Content-Type": JSON})
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        problem = orjson.loads(response.content)
        assert response.headers["content-type"] == PROBLEM_JSON
        assert problem["status"] == response.status_code
        assert isinstance(problem["detail"], str) and problem["detail"].endswith(".")
        allowed = {None, *FIELDS, name, *(value if isinstance(value, dict) and name is None else ())}
        assert problem.get("field") in allowed
    else:
        assert response.headers["content-type"] == JSON


NAMES = st.text(alphabet=st.characters(exclude_categories=("Cs",)), min_size=1, max_size=6)
# Mostly finite values, sometimes past the square-overflow bound so that errors are compared too.
VALUES = st.one_of(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(min_value=1e153, max_value=1e300, allow_nan=False, allow_infinity=False),
)
FINITE = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


def in_form(values: np.ndarray | list[list[Any]], form: str, names: list[str]) -> Any:
    """Write a matrix (a list of rows) in one of the four JSON forms."""
    rows = [list(row) for row in values]
    if form == "flat" and len(rows[0]) == 1:
        return [row[0] for row in rows]
    if form == "columns" and names:
        return {name: [row[j] for row in rows] for j, name in enumerate(names)}
    if form == "records" and names:
        return [dict(zip(names, row, strict=True)) for row in rows]
    return rows


@st.composite
def bodies(draw: st.DrawFn, values: st.SearchStrategy[Any] = VALUES) -> dict[str, Any]:
    """A /fit body with X_train, y_train and X_test in random forms, with random values."""
    n = draw(st.integers(1, 6))
    p = draw(st.integers(1, 4))
    k = draw(st.integers(1, 2))
    m = draw(st.integers(1, 3))
    forms = st.sampled_from(["rows", "flat", "columns", "records"])
    x_form = draw(forms)
    named = x_form in ("columns", "records")
    names = draw(st.lists(NAMES, min_size=p, max_size=p, unique=True)) if named else []
    X = draw(st.lists(st.lists(values, min_size=p, max_size=p), min_size=n, max_size=n))
    Y = draw(st.lists(st.lists(values, min_size=k, max_size=k), min_size=n, max_size=n))
    X_test = draw(st.lists(st.lists(values, min_size=p, max_size=p), min_size=m, max_size=m))
    targets = draw(st.lists(NAMES, min_size=k, max_size=k, unique=True))
    body: dict[str, Any] = {
        "X_train": in_form(X, x_form, names),
        "y_train": in_form(Y, draw(st.sampled_from(["rows", "flat", "columns"])), targets),
    }
    if named:
        order = draw(st.permutations(range(p)))
        test_names = [names[j] for j in order]
        body["X_test"] = in_form(
            [[row[j] for j in order] for row in X_test],
            draw(st.sampled_from(["columns", "records"])),
            test_names,
        )
    else:
        body["X_test"] = in_form(X_test, draw(st.sampled_from(["rows", "flat"])), [])
    if draw(st.booleans()):
        body["sample_weight"] = draw(st.lists(st.floats(0.5, 10), min_size=n, max_size=n))
    return body


def outcome(parse: Any) -> tuple[str, Any]:
    """Run a parse; return its request or its error, in a form that compares exactly."""
    try:
        request: FitRequest = parse()
    except InvalidInput as exc:
        return ("error", (exc.status, exc.detail, exc.field))
    arrays = [request.X_train, request.y_train, request.X_test, request.sample_weight]
    exact = [None if a is None else (a.dtype.str, a.shape, a.tobytes()) for a in arrays]
    return (
        "request",
        (exact, request.feature_names, request.target_names, request.single_target, request.options),
    )


@PROPERTY
@given(body=bodies())
@example(body={"X_train": {"a\x00": [1.0, 2.0]}, "y_train": [1.0, 3.0], "X_test": {"a\x00": [0.5]}})
@example(body={"X_train": [[1.0], [2.0]], "y_train": {"t\x00": [1.0, 3.0]}, "X_test": [[0.5]]})
@example(body={"X_train": [[1.5], [2**64 + 1]], "y_train": [1.0, -(2**70)], "X_test": [[1e154], [2e154]]})
def test_fast_and_exact_parsing_agree(body: dict[str, Any]) -> None:
    """The fast road (simdjson) and the exact road (Python objects) give the same arrays, or the same error."""
    data = json.dumps(body).encode()  # orjson.dumps cannot write integers past 64 bits
    limits = Settings().limits
    fast = outcome(lambda: parse_json(data, "fit", limits))
    exact = outcome(lambda: build_request(PlainFields(orjson.loads(data)), "fit", limits))
    assert fast == exact


@st.composite
def exact_problems(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Well-conditioned integer X (n > p), integer coefficients and intercepts, with or without intercept."""
    p = draw(st.integers(1, 5))
    k = draw(st.integers(1, 2))
    extra = draw(st.integers(2, 10))
    noise = np.array(
        draw(st.lists(st.lists(st.integers(-5, 5), min_size=p, max_size=p), min_size=extra, max_size=extra))
    )
    # 8 I and a row of zeros make [1, X] of full column rank whatever the other rows are.
    X = np.vstack([8.0 * np.eye(p), np.zeros((1, p)), noise]).astype(np.float64)
    order = draw(st.permutations(range(X.shape[0])))
    X = X[list(order)]
    coef = np.array(
        draw(st.lists(st.lists(st.integers(-20, 20), min_size=p, max_size=p), min_size=k, max_size=k)),
        dtype=np.float64,
    )
    fit_intercept = draw(st.booleans())
    intercept = np.array(draw(st.lists(st.integers(-50, 50), min_size=k, max_size=k)), dtype=np.float64)
    if not fit_intercept:
        intercept = np.zeros(k)
    return X, coef, intercept, fit_intercept


def json_targets(Y: np.ndarray) -> Any:
    """``y_train`` in JSON: flat with one target, rows of k values with several."""
    return Y[:, 0].tolist() if Y.shape[1] == 1 else Y.tolist()


@PROPERTY
@given(problem=exact_problems())
@example(problem=(np.array([[8.0], [0.0], [1.0]]), np.array([[2.0], [-3.0]]), np.zeros(2), False))
def test_exact_data_gives_back_its_coefficients(
    shared: falcon.testing.TestClient, problem: tuple[np.ndarray, np.ndarray, np.ndarray, bool]
) -> None:
    """y = X coef + intercept, exactly: /fit recovers coef and intercept to 1e-9 relative."""
    X, coef, intercept, fit_intercept = problem
    Y = X @ coef.T + intercept  # integers: exact in float64
    body = {"X_train": X.tolist(), "y_train": json_targets(Y), "fit_intercept": fit_intercept}
    answer = shared.simulate_post("/fit", json=body)
    assert answer.status_code == 200, answer.text
    got_coef = np.array(answer.json["coef"]).reshape(coef.shape)
    got_intercept = np.array(answer.json["intercept"]).reshape(intercept.shape)
    scale = max(1.0, float(np.abs(coef).max()), float(np.abs(intercept).max()))
    np.testing.assert_allclose(got_coef, coef, rtol=1e-9, atol=1e-9 * scale)
    np.testing.assert_allclose(got_intercept, intercept, rtol=1e-9, atol=1e-9 * scale)


@PROPERTY
@given(
    problem=exact_problems(),
    y_noise=st.lists(FINITE, min_size=20, max_size=20),
    weighted=st.booleans(),
    data=st.data(),
)
def test_row_order_does_not_change_the_fit(
    shared: falcon.testing.TestClient,
    problem: tuple[np.ndarray, np.ndarray, np.ndarray, bool],
    y_noise: list[float],
    weighted: bool,
    data: st.DataObject,
) -> None:
    """Permuting the training rows (with their targets and weights) gives the same fit to 1e-9."""
    X, _, _, fit_intercept = problem
    n = X.shape[0]
    y = np.array(y_noise[:n])
    weights = np.linspace(0.5, 2.0, n)
    order = list(data.draw(st.permutations(range(n))))

    def fit_rows(rows: list[int]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "X_train": X[rows].tolist(),
            "y_train": y[rows].tolist(),
            "fit_intercept": fit_intercept,
        }
        if weighted:
            body["sample_weight"] = weights[rows].tolist()
        answer = shared.simulate_post("/fit", json=body)
        assert answer.status_code == 200, answer.text
        return answer.json  # type: ignore[no-any-return]

    first, permuted = fit_rows(list(range(n))), fit_rows(order)
    scale = max(1.0, float(np.abs(first["coef"]).max()), abs(first["intercept"]))
    np.testing.assert_allclose(permuted["coef"], first["coef"], rtol=1e-9, atol=1e-9 * scale)
    np.testing.assert_allclose(permuted["intercept"], first["intercept"], rtol=1e-9, atol=1e-9 * scale)


@PROPERTY
@given(body=bodies(FINITE), endpoint=st.sampled_from(["/fit", "/predict"]))
def test_one_prediction_per_query_row(
    shared: falcon.testing.TestClient, body: dict[str, Any], endpoint: str
) -> None:
    """There is one prediction per query row (a list of k with k targets), equal to X_test coef + intercept."""
    answer = shared.simulate_post(endpoint, json=body)
    if answer.status_code == 422 and "overflowed" in answer.json["detail"]:
        # Tiny spreads of x give slopes past the float range: the contract's 422, not a failure.
        return
    assert answer.status_code == 200, answer.text
    result = answer.json
    request = build_request(PlainFields(body), "fit", Settings().limits)
    assert request.X_test is not None and request.y_train is not None
    predictions = np.array(result["predictions"])
    m, k = request.X_test.shape[0], request.y_train.shape[1]
    assert predictions.shape == ((m,) if request.single_target else (m, k))
    coef = np.array(result["coef"]).reshape(k, -1)
    expected = request.X_test @ coef.T + np.array(result["intercept"]).reshape(k)
    with np.errstate(over="ignore"):
        scale = 1.0 + np.abs(request.X_test).sum(axis=1, keepdims=True) * np.abs(coef).max() + np.abs(expected)
    assert np.all(np.abs(predictions.reshape(m, k) - expected) <= 1e-9 * scale)
