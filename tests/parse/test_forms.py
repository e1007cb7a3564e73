"""Tests of CSV and multipart bodies (service/parse/forms.py, the table form) and of CSV answers."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import falcon.testing
import numpy as np
import pytest
import requests
from urllib3 import encode_multipart_formdata

import service
from service.errors import FitserveError, InvalidInput, MalformedBody
from service.parse.csv import read_csv
from service.parse.forms import parse_csv, parse_form
from service.request import FitRequest
from service.settings import Limits
from service.tabular import design_request

DATA = Path(__file__).resolve().parents[2] / "examples" / "data"
LIMITS = Limits()
TRAIN = b"a,b,price\n1,2,3.5\n2,1,4\n3,5,8.25\n4,4,9\n5,7,12\n6,1,7.5\n"
TRAIN_JSON = {
    "X_train": {"a": [1, 2, 3, 4, 5, 6], "b": [2, 1, 5, 4, 7, 1]},
    "y_train": {"price": [3.5, 4, 8.25, 9, 12, 7.5]},
}


def fit_csv(body: bytes | str, params: dict[str, Any] | None = None, endpoint: str = "fit") -> FitRequest:
    """Parse a CSV body, and build its design."""
    data = body.encode() if isinstance(body, str) else body
    return design_request(parse_csv(data, params or {}, endpoint, LIMITS), LIMITS)  # type: ignore[arg-type]


def fit_form(parts: list[tuple[str | None, bytes]], endpoint: str = "predict", **params: Any) -> FitRequest:
    """Parse multipart parts, and build their design."""
    return design_request(parse_form(parts, params, endpoint, LIMITS), LIMITS)  # type: ignore[arg-type]


def refusal(call: Any, *args: Any, **kwargs: Any) -> FitserveError:
    """The error a call raises."""
    with pytest.raises(FitserveError) as info:
        call(*args, **kwargs)
    return info.value


def multipart(fields: dict[str, Any]) -> tuple[bytes, str]:
    """Encode a multipart/form-data body (files as (filename, bytes, type) tuples)."""
    return encode_multipart_formdata(fields)


def post(client: falcon.testing.TestClient, path: str, body: bytes, content_type: str, **kwargs: Any) -> Any:
    """POST a body of a given type."""
    headers = {"Content-Type": content_type, **kwargs.pop("headers", {})}
    return client.simulate_post(path, body=body, headers=headers, **kwargs)


def post_json(client: falcon.testing.TestClient, path: str, document: dict[str, Any], **kwargs: Any) -> Any:
    """POST a JSON body."""
    return post(client, path, json.dumps(document).encode(), "application/json", **kwargs)


def read_csv_answer(text: str) -> tuple[list[str], np.ndarray]:
    """The header and the values of a CSV answer."""
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], np.array(rows[1:], dtype=np.float64).reshape(len(rows) - 1, len(rows[0]))


def table(rows: int, seed: int = 0) -> tuple[bytes, dict[str, Any]]:
    """A random table with three features and a target, as CSV and as the JSON fields."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 3)) * [1000, 1, 0.01]
    y = X @ [0.5, -2, 300] + 7 + rng.normal(size=rows)
    text = "x1,x2,x3,y\n" + "\n".join(
        ",".join(repr(float(v)) for v in row) for row in np.column_stack([X, y])
    )
    return text.encode(), {
        "X_train": {f"x{j + 1}": X[:, j].tolist() for j in range(3)},
        "y_train": {"y": y.tolist()},
    }


# ---------------------------------------------------------------- pure: tables


def test_a_table_reads_its_header_and_numbers() -> None:
    parsed = read_csv(b"a,b\n1,-2.5\n.5,1e3\n+3,4.\n", "train")
    assert parsed.names == ("a", "b")
    assert [parsed[name].values.tolist() for name in parsed] == [[1, 0.5, 3], [-2.5, 1000, 4]]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("\ufeffa,b\r\n1,2\r\n3,4\r\n", id="bom-and-crlf"),
        pytest.param('"a","b"\n"1","2"\n3,4\n\n', id="quoted"),
        pytest.param("a,b\n1,2\n3,4\n\n\n", id="trailing-blank-lines"),
        pytest.param("a,b\n1,2\n3,4", id="no-final-newline"),
    ],
)
def test_tables_in_common_spellings_read_the_same(text: str) -> None:
    request = fit_csv(text)
    assert (request.feature_names, request.target_names) == (("a",), ("b",))
    assert request.X_train is not None and request.X_train[:, 0].tolist() == [1, 3]
    assert request.y_train is not None and request.y_train[:, 0].tolist() == [2, 4]


def test_a_quoted_header_may_hold_commas() -> None:
    parsed = read_csv(b'"area, m2",price\n50,100\n', "train")
    assert parsed.names == ("area, m2", "price")


def test_the_default_target_is_the_last_column() -> None:
    request = fit_csv(TRAIN)
    assert request.feature_names == ("a", "b")
    assert request.target_names == ("price",)
    assert request.single_target
    assert request.y_train is not None and request.y_train[:, 0].tolist() == [3.5, 4, 8.25, 9, 12, 7.5]
    assert request.X_train is not None and request.X_train[0].tolist() == [1, 2]


def test_named_targets_and_a_weight_column_leave_the_rest_as_features() -> None:
    request = fit_csv("w,a,y1,b,y2\n1,1,2,3,4\n2,5,6,7,8\n0.5,9,1,2,3\n", {"target": "y2, y1", "weight": "w"})
    assert request.feature_names == ("a", "b")
    assert request.target_names == ("y2", "y1")
    assert not request.single_target
    assert request.y_train is not None and request.y_train.tolist() == [[4, 2], [8, 6], [3, 1]]
    assert request.sample_weight is not None and request.sample_weight.tolist() == [1, 2, 0.5]


def test_a_weight_in_the_last_column_makes_the_one_before_it_the_default_target() -> None:
    request = fit_csv("a,y,w\n1,2,1\n2,3,1\n3,5,2\n", {"weight": "w"})
    assert request.target_names == ("y",)
    assert request.feature_names == ("a",)


@pytest.mark.parametrize(
    ("params", "fit_intercept", "positive", "statistics"),
    [
        pytest.param({}, True, False, False, id="defaults"),
        pytest.param(
            {"fit_intercept": "false", "positive": "true", "statistics": "TRUE"},
            False,
            True,
            True,
            id="words",
        ),
        pytest.param(
            {"fit_intercept": "0", "positive": "1", "statistics": "False"}, False, True, False, id="digits"
        ),
    ],
)
def test_flags_come_as_true_false_1_or_0(
    params: dict[str, str], fit_intercept: bool, positive: bool, statistics: bool
) -> None:
    options = fit_csv(TRAIN, params).options
    assert (options.fit_intercept, options.positive, options.statistics) == (
        fit_intercept,
        positive,
        statistics,
    )


def test_interval_and_level_come_from_the_form() -> None:
    request = fit_form(
        [("train", TRAIN), ("test", b"b,a\n1,2\n"), ("interval", b"confidence"), ("level", b"0.9\r\n")]
    )
    assert request.options.interval == "confidence"
    assert request.options.level == 0.9


def test_test_columns_are_matched_by_name() -> None:
    request = fit_form([("train", TRAIN), ("test", b"b,a\n10,1\n20,2\n")])
    assert request.X_test is not None and request.X_test.tolist() == [[1, 10], [2, 20]]


def test_options_may_come_in_the_query_string_of_a_form() -> None:
    request = fit_form([("train", TRAIN)], endpoint="fit", statistics="1", target="b")
    assert request.options.statistics
    assert request.target_names == ("b",)


def cell(value: str) -> bytes:
    """A training table with ``value`` in data row 2, column 'b'."""
    return f"a,b,y\n1,2,3\n4,{value},6\n7,8,9\n".encode()


@pytest.mark.parametrize(
    ("body", "excerpt"),
    [
        pytest.param(cell("nan"), '"nan"', id="nan"),
        pytest.param(cell("NaN"), '"NaN"', id="NaN"),
        pytest.param(cell("inf"), '"inf"', id="inf"),
        pytest.param(cell("-Infinity"), '"-Infinity"', id="infinity"),
        pytest.param(cell("1_000"), '"1_000"', id="underscore"),
        pytest.param(cell(" 1"), '" 1"', id="leading-space"),
        pytest.param(cell("1 "), '"1 "', id="trailing-space"),
        pytest.param(cell(""), "missing value", id="empty"),
        pytest.param(cell("0x10"), '"0x10"', id="hex"),
        pytest.param(cell("1,5").replace(b"1,5", b'"1,5"'), '"1,5"', id="quoted-comma"),
        pytest.param(cell('" 1"'), '" 1"', id="quoted-space"),
        pytest.param(cell("\u0661\u0662"), '"\u0661\u0662"', id="arabic-digits"),
        pytest.param(cell("1e"), '"1e"', id="bare-exponent"),
        pytest.param(cell("1.2.3"), '"1.2.3"', id="two-points"),
        pytest.param(cell("abcdefghijklmnopqrstuvwxyz"), '"abcdefghijklmnopq..."', id="excerpt"),
        pytest.param(cell("1e999"), "1e999", id="overflow"),
        pytest.param(cell("2e154"), "2e154", id="square-overflows"),
    ],
)
def test_a_cell_that_is_not_a_number_in_a_numeric_column_is_refused(body: bytes, excerpt: str) -> None:
    error = refusal(fit_csv, body)
    assert isinstance(error, InvalidInput)
    assert error.field == "train"
    assert_sentence(error)
    assert excerpt in error.detail
    assert "data row 2" in error.detail and "row 3 in a spreadsheet" in error.detail
    assert "column 'b'" in error.detail


def test_a_text_cell_in_the_target_names_the_target_column() -> None:
    error = refusal(fit_csv, b"a,b,y\n1,2,3\n4,5,x\n7,8,9\n")
    assert error.field == "train" and "column 'y'" in error.detail and '"x"' in error.detail


def test_a_mixed_column_is_reported_at_its_first_cell_of_the_fewer_kind_the_targets_first() -> None:
    error = refusal(fit_csv, "a,b,y\n1,2,3\n4,5,x\n7,z,9\n1,nan,2\n")
    assert error.field == "train"
    assert '"x"' in error.detail and "data row 2" in error.detail and "column 'y'" in error.detail
    error = refusal(fit_csv, "a,b,y\n1,2,3\n4,5,6\n7,z,9\n1,nan,2\n")
    assert '"z"' in error.detail and "data row 3" in error.detail and "column 'b'" in error.detail


def test_a_column_the_fit_does_not_use_is_not_checked() -> None:
    body = "a,note,big,y\n1,x,1e999,3\n2,4,5,5\n3,,6,6\n"
    request = fit_csv(body, {"formula": "y ~ a"})
    assert request.feature_names == ("a",)
    assert "column 'note'" in refusal(fit_csv, body, {"formula": "y ~ a + note"}).detail
    assert "1e999" in refusal(fit_csv, body, {"formula": "y ~ a + big"}).detail


def test_a_text_column_is_categorical() -> None:
    request = fit_csv("hood,a,y\nx,1,3\ny,2,3\nx,3,5\nz,5,2\n")
    assert request.feature_names == ("hood[T.y]", "hood[T.z]", "a")


@pytest.mark.parametrize(
    ("call", "status", "field", "words"),
    [
        pytest.param(lambda: fit_csv(b""), 400, None, "empty", id="empty-body"),
        pytest.param(lambda: fit_csv(b"\n\n"), 400, None, "empty", id="blank-body"),
        pytest.param(lambda: fit_csv(b"a,y\n1,\xff\n"), 400, None, "UTF-8", id="bad-utf8"),
        pytest.param(lambda: fit_csv(b'a,y\n"1,2\n'), 400, None, "not valid CSV", id="open-quote"),
        pytest.param(lambda: fit_csv(b"a,b,y\n"), 422, "train", "no data rows", id="header-only"),
        pytest.param(
            lambda: fit_csv(b"a,b,y\n1,2,3\n4,5\n"),
            422,
            "train",
            "data row 2 that has 2 cells",
            id="short-row",
        ),
        pytest.param(
            lambda: fit_csv(b"a,b,y\n1,2,3\n4,5,6,7\n"), 422, "train", "has 4 cells", id="long-row"
        ),
        pytest.param(
            lambda: fit_csv(b"a,b,y\n1,2,3\n\n4,5,6\n"),
            422,
            "train",
            "data row 2 that is blank",
            id="blank-row",
        ),
        pytest.param(
            lambda: fit_csv(b'a,b,y\n1,2,3\n"4",5\n'), 422, "train", "has 2 cells", id="short-quoted-row"
        ),
        pytest.param(lambda: fit_csv(b"a,a,y\n1,2,3\n"), 422, "train", "'a' twice", id="duplicate-header"),
        pytest.param(lambda: fit_csv(b",a,y\n0,1,2\n"), 422, "train", "index=False", id="unnamed-column"),
        pytest.param(lambda: fit_csv(b"y\n1\n2\n"), 422, "train", "no term but the intercept", id="no-features"),
        pytest.param(
            lambda: fit_csv(TRAIN, {"target": "prce"}), 422, "target", "Did you mean 'price'", id="unknown-target"
        ),
        pytest.param(
            lambda: fit_csv(TRAIN, {"target": "a,,b"}), 422, "target", "empty name", id="empty-target"
        ),
        pytest.param(
            lambda: fit_csv(TRAIN, {"target": "a,a"}), 422, "target", "twice", id="repeated-target"
        ),
        pytest.param(
            lambda: fit_csv(TRAIN, {"target": "a,b,price"}), 422, "target", "no term but the intercept", id="all-targets"
        ),
        pytest.param(
            lambda: fit_csv(TRAIN, {"weight": "wt"}), 422, "weight", "'wt'", id="unknown-weight"
        ),
        pytest.param(
            lambda: fit_csv(b"a,w,y\n1,1,2\n2,-1,3\n", {"weight": "w"}),
            422,
            "train",
            "data row 2",
            id="negative-weight",
        ),
        pytest.param(
            lambda: fit_csv(b"a,w,y\n1,0,2\n2,0,3\n", {"weight": "w"}),
            422,
            "train",
            "all zeros",
            id="zero-weights",
        ),
        pytest.param(
            lambda: fit_csv(TRAIN, {"statistcs": "true"}),
            422,
            "statistcs",
            "Did you mean 'statistics'",
            id="typo-param",
        ),
        pytest.param(
            lambda: fit_csv(TRAIN, {"X_test": "1"}),
            422,
            "X_test",
            "not a query parameter",
            id="json-field-param",
        ),
        pytest.param(
            lambda: fit_csv(TRAIN, {"target": ["a", "b"]}), 422, "target", "2 times", id="repeated-param"
        ),
        pytest.param(
            lambda: fit_csv(TRAIN, {"positive": "yes"}), 422, "positive", "true or false", id="bad-flag"
        ),
        pytest.param(
            lambda: fit_csv(TRAIN, {"level": "nan"}), 422, "level", "between 0 and 1", id="nan-level"
        ),
        pytest.param(lambda: fit_csv(TRAIN, {"level": "1"}), 422, "level", "between 0 and 1", id="level-one"),
        pytest.param(
            lambda: fit_csv(TRAIN, {"interval": "wide"}), 422, "interval", "one of", id="bad-interval"
        ),
        pytest.param(
            lambda: fit_csv(TRAIN, {"interval": "prediction"}),
            422,
            "interval",
            "no 'test'",
            id="interval-without-test",
        ),
        pytest.param(
            lambda: fit_csv(TRAIN, endpoint="predict"), 422, "test", "multipart", id="csv-on-predict"
        ),
        pytest.param(
            lambda: fit_form([("test", b"a,b\n1,2\n")]), 422, "train", "'train' part", id="no-train-part"
        ),
        pytest.param(lambda: fit_form([("train", TRAIN)]), 422, "test", "'test' part", id="no-test-part"),
        pytest.param(
            lambda: fit_form([("train", TRAIN), ("tset", b"a,b\n1,2\n")]),
            422,
            "tset",
            "Did you mean 'test'",
            id="typo-part",
        ),
        pytest.param(
            lambda: fit_form([("train", TRAIN), (None, b"1")]), 422, None, "no name", id="unnamed-part"
        ),
        pytest.param(
            lambda: fit_form([("train", TRAIN), ("train", TRAIN)]),
            422,
            "train",
            "twice",
            id="two-train-parts",
        ),
        pytest.param(
            lambda: fit_form([("train", TRAIN), ("target", b"b")], target="a"),
            422,
            "target",
            "query string",
            id="form-and-query",
        ),
        pytest.param(
            lambda: fit_form([("train", b" \n"), ("test", b"a,b\n1,2\n")]),
            422,
            "train",
            "empty",
            id="empty-train-part",
        ),
        pytest.param(
            lambda: fit_form([("train", TRAIN), ("test", b"\xff")]), 400, None, "UTF-8", id="bad-utf8-test"
        ),
        pytest.param(
            lambda: fit_form([("train", TRAIN), ("test", b"a,b\n")]),
            422,
            "test",
            "no data rows",
            id="test-header-only",
        ),
        pytest.param(
            lambda: fit_form([("train", TRAIN), ("test", b"a\n1\n")]),
            422,
            "test",
            "no column 'b'",
            id="test-missing-column",
        ),
        pytest.param(
            lambda: fit_form([("train", TRAIN), ("test", b"a,b\n1,2\n3,inf\n")]),
            422,
            "test",
            "column 'b'",
            id="test-bad-cell",
        ),
        pytest.param(
            lambda: fit_form([("train", TRAIN), ("test", b"a,b\n1,2,3\n")]),
            422,
            "test",
            "has 3 cells",
            id="test-ragged",
        ),
    ],
)
def test_bad_tables_are_refused_naming_the_field(
    call: Any, status: int, field: str | None, words: str
) -> None:
    error = refusal(call)
    assert (error.status, error.field) == (status, field)
    assert words in error.detail
    assert isinstance(error, MalformedBody) == (status == 400)
    assert_sentence(error)


def assert_sentence(error: FitserveError) -> None:
    """A message is a full sentence that names its field."""
    detail = error.detail
    assert len(detail) >= 20 and not detail[0].islower(), detail
    assert detail.endswith(".") and not detail.endswith(".."), detail
    assert error.field is None or error.field in detail, detail


def test_a_large_table_takes_the_vectorized_road_and_reads_exactly() -> None:
    body, document = table(10_000)
    request = fit_csv(body)
    assert request.X_train is not None and request.y_train is not None
    assert np.array_equal(request.X_train[:, 0], document["X_train"]["x1"])
    assert np.array_equal(request.y_train[:, 0], document["y_train"]["y"])


# ---------------------------------------------------------------- app: bodies


def without_formula(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer less what only a table-form fit carries (its formula and design)."""
    return {key: value for key, value in answer.items() if key not in ("formula", "design")}


def assert_same_answer(a: Any, b: Any) -> None:
    """A table posted as CSV and the same numbers as JSON matrices: the fits agree exactly."""
    assert a.status_code == b.status_code == 200, (a.text, b.text)
    assert without_formula(a.json) == without_formula(b.json)
    assert "formula" in a.json or "formula" in b.json


def test_a_csv_fit_answers_as_the_json_fit(client: falcon.testing.TestClient) -> None:
    answer = post(client, "/fit", TRAIN, "text/csv")
    assert answer.json["feature_names"] == ["a", "b"] and answer.json["target_names"] == ["price"]
    assert isinstance(answer.json["intercept"], float)
    assert_same_answer(answer, post_json(client, "/fit", TRAIN_JSON))


def test_a_csv_fit_with_weights_two_targets_and_statistics_answers_as_json(
    client: falcon.testing.TestClient,
) -> None:
    body = b"a,w,u,b,v\n1,1,2,3,4\n2,2,6,7,8\n3,0.5,1,2,3\n4,1,5,1,2\n5,3,9,9,1\n6,1,2,2,2\n"
    query = "target=v,u&weight=w&statistics=true&level=0.9"
    answer = post(client, "/fit", body, "text/csv; charset=utf-8", query_string=query)
    assert answer.json["target_names"] == ["v", "u"] and len(answer.json["statistics"]) == 2
    document = {
        "X_train": {"a": [1, 2, 3, 4, 5, 6], "b": [3, 7, 2, 1, 9, 2]},
        "y_train": {"v": [4, 8, 3, 2, 1, 2], "u": [2, 6, 1, 5, 9, 2]},
        "sample_weight": [1, 2, 0.5, 1, 3, 1],
        "statistics": True,
        "level": 0.9,
    }
    assert_same_answer(answer, post_json(client, "/fit", document))


def test_csv_options_in_the_query_answer_as_json(client: falcon.testing.TestClient) -> None:
    answer = post(client, "/fit", TRAIN, "text/csv", query_string="fit_intercept=FALSE&positive=1")
    assert answer.json["intercept"] == 0.0
    assert_same_answer(
        answer, post_json(client, "/fit", {**TRAIN_JSON, "fit_intercept": False, "positive": True})
    )


def test_csv_on_predict_says_to_use_multipart(client: falcon.testing.TestClient) -> None:
    answer = post(client, "/predict", TRAIN, "text/csv")
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json["field"] == "test" and "multipart" in answer.json["detail"]


def test_unknown_query_parameters_are_named(client: falcon.testing.TestClient) -> None:
    answer = post(client, "/fit", TRAIN, "text/csv", query_string="fit_intercpt=false")
    assert (answer.status_code, answer.json["field"]) == (422, "fit_intercpt")
    assert "fit_intercept" in answer.json["detail"]


def test_multipart_predict_with_reordered_test_columns_answers_as_json(
    client: falcon.testing.TestClient,
) -> None:
    body, content_type = multipart(
        {
            "train": ("train.csv", TRAIN, "text/csv"),
            "test": ("test.csv", b"b,a\n1,2\n10,20\n", "application/octet-stream"),
            "target": "price",
            "statistics": "true",
        }
    )
    answer = post(client, "/predict", body, content_type)
    expected = post_json(
        client,
        "/predict",
        {**TRAIN_JSON, "X_test": [{"b": 1, "a": 2}, {"a": 20, "b": 10}], "statistics": True},
    )
    assert len(answer.json["predictions"]) == 2
    assert_same_answer(answer, expected)


def test_a_train_part_over_one_mib_is_taken(client: falcon.testing.TestClient) -> None:
    train, document = table(60_000, seed=1)
    assert len(train) > 2**20
    body, content_type = multipart(
        {"train": ("train.csv", train, "text/csv"), "test": ("test.csv", b"x3,x2,x1\n0,1,2\n", "text/csv")}
    )
    answer = post(client, "/predict", body, content_type)
    assert answer.status_code == 200, answer.text
    assert answer.json["n_samples"] == 60_000
    assert_same_answer(
        answer, post_json(client, "/predict", {**document, "X_test": {"x1": [2], "x2": [1], "x3": [0]}})
    )


def test_a_csv_body_over_one_mib_is_taken(client: falcon.testing.TestClient) -> None:
    train, document = table(60_000, seed=2)
    assert_same_answer(post(client, "/fit", train, "text/csv"), post_json(client, "/fit", document))


def test_the_example_files_fit_and_predict(client: falcon.testing.TestClient) -> None:
    body, content_type = multipart(
        {
            "train": ("train.csv", (DATA / "train.csv").read_bytes(), "text/csv"),
            "test": ("test.csv", (DATA / "test.csv").read_bytes(), "text/csv"),
            "target": "price",
        }
    )
    answer = post(client, "/predict", body, content_type)
    assert answer.status_code == 200, answer.text
    assert answer.json["feature_names"] == ["sqft", "bedrooms", "age"]
    assert len(answer.json["predictions"]) == (DATA / "test.csv").read_text().count("\n") - 1


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(b"", "multipart/form-data; boundary=xyz", id="empty"),
        pytest.param(b"not a form", "multipart/form-data; boundary=xyz", id="no-delimiter"),
        pytest.param(
            b"--xyz\r\nContent-Disposition: form-data; name=train",
            "multipart/form-data; boundary=xyz",
            id="cut-headers",
        ),
        pytest.param(b"--xyz\r\n\r\n", "multipart/form-data", id="no-boundary"),
    ],
)
def test_malformed_multipart_is_400(
    client: falcon.testing.TestClient, body: bytes, content_type: str
) -> None:
    answer = post(client, "/fit", body, content_type)
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    assert "multipart/form-data" in answer.json["detail"]


def test_a_multipart_train_part_that_is_not_utf8_is_400(client: falcon.testing.TestClient) -> None:
    body, content_type = multipart({"train": ("train.csv", b"a,y\n1,\xff\n", "text/csv")})
    answer = post(client, "/fit", body, content_type)
    assert answer.status_code == 400 and "UTF-8" in answer.json["detail"]


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain", None])
def test_415_says_what_the_endpoint_takes(
    client: falcon.testing.TestClient, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    answer = client.simulate_post("/fit", body=b"a=1", headers=headers)
    assert answer.status_code == 415
    detail = answer.json["detail"]
    for taken in ("application/json", "text/csv", "multipart/form-data", "--json", "-F"):
        assert taken in detail
    if content_type == "application/x-www-form-urlencoded":
        assert "curl's -d" in detail


# ---------------------------------------------------------------- app: CSV answers


def test_a_csv_answer_has_one_column_per_named_target(client: falcon.testing.TestClient) -> None:
    body, content_type = multipart(
        {"train": ("t.csv", TRAIN, "text/csv"), "test": ("x.csv", b"a,b\n1,2\n3,4\n5,6\n", "text/csv")}
    )
    answer = post(client, "/predict", body, content_type, headers={"Accept": "text/csv"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    header, values = read_csv_answer(answer.text)
    assert header == ["price"]
    expected = post_json(client, "/predict", {**TRAIN_JSON, "X_test": [[1, 2], [3, 4], [5, 6]]}).json
    assert values[:, 0].tolist() == expected["predictions"]


def test_a_csv_answer_with_intervals_adds_lower_and_upper(client: falcon.testing.TestClient) -> None:
    body, content_type = multipart(
        {
            "train": ("t.csv", TRAIN, "text/csv"),
            "test": ("x.csv", b"a,b\n1,2\n3,4\n", "text/csv"),
            "interval": "prediction",
            "level": "0.9",
        }
    )
    answer = post(client, "/predict", body, content_type, headers={"Accept": "text/csv"})
    header, values = read_csv_answer(answer.text)
    assert header == ["price", "lower_price", "upper_price"]
    expected = post_json(
        client, "/predict", {**TRAIN_JSON, "X_test": [[1, 2], [3, 4]], "interval": "prediction", "level": 0.9}
    ).json
    assert values[:, 0].tolist() == expected["predictions"]
    assert values[:, 1].tolist() == expected["intervals"]["lower"]
    assert values[:, 2].tolist() == expected["intervals"]["upper"]
    assert (values[:, 1] < values[:, 0]).all() and (values[:, 0] < values[:, 2]).all()


def test_a_csv_answer_with_two_targets_and_intervals(client: falcon.testing.TestClient) -> None:
    train = b"a,b,u,v\n1,2,3,1\n2,1,4,0\n3,5,8,2\n4,4,9,5\n5,7,12,3\n6,1,7.5,9\n"
    body, content_type = multipart(
        {
            "train": ("t.csv", train, "text/csv"),
            "test": ("x.csv", b"a,b\n1,1\n2,2\n3,3\n", "text/csv"),
            "target": "v,u",
            "interval": "confidence",
        }
    )
    answer = post(client, "/predict", body, content_type, headers={"Accept": "text/csv"})
    header, values = read_csv_answer(answer.text)
    assert header == ["v", "u", "lower_v", "upper_v", "lower_u", "upper_u"]
    assert values.shape == (3, 6)
    expected = post(client, "/predict", body, content_type).json
    assert values[:, :2].tolist() == expected["predictions"]
    assert values[:, [2, 4]].tolist() == expected["intervals"]["lower"]
    assert values[:, [3, 5]].tolist() == expected["intervals"]["upper"]


@pytest.mark.parametrize(
    ("y_train", "header"),
    [
        pytest.param([1, 2, 4, 3], ["y"], id="one"),
        pytest.param([[1, 5], [2, 6], [4, 8], [3, 9]], ["y0", "y1"], id="two"),
    ],
)
def test_unnamed_targets_are_y_or_y0_y1(
    client: falcon.testing.TestClient, y_train: list[Any], header: list[str]
) -> None:
    document = {"X_train": [[1, 0], [2, 1], [3, 1], [4, 3]], "y_train": y_train, "X_test": [[1, 1], [2, 2]]}
    answer = post_json(client, "/predict", document, headers={"Accept": "text/csv"})
    names, values = read_csv_answer(answer.text)
    assert names == header
    assert values.shape == (2, len(header))


def test_a_csv_answer_without_test_rows_is_the_header_alone(client: falcon.testing.TestClient) -> None:
    answer = post(client, "/fit", TRAIN, "text/csv", headers={"Accept": "text/csv"})
    assert answer.status_code == 200
    assert answer.text == "price\n"


def test_errors_stay_problem_json_when_csv_is_asked(client: falcon.testing.TestClient) -> None:
    answer = post(client, "/fit", cell("nan"), "text/csv", headers={"Accept": "text/csv"})
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json["field"] == "train"


# ---------------------------------------------------------------- live: as curl sends them


@pytest.mark.live
def test_files_and_csv_bodies_through_a_real_server() -> None:
    train, document = table(60_000, seed=3)
    with service.serve_in_background(port=0) as server:
        answer = requests.post(
            f"{server.url}/predict",
            files={"train": ("train.csv", train), "test": ("test.csv", b"x2,x1,x3\n1,2,3\n4,5,6\n")},
            data={"interval": "prediction"},
            headers={"Accept": "text/csv"},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        header, values = read_csv_answer(answer.text)
        assert header == ["y", "lower_y", "upper_y"] and values.shape == (2, 3)
        chunks = (train[i : i + 65_536] for i in range(0, len(train), 65_536))  # sent chunked
        fitted = requests.post(
            f"{server.url}/fit", data=chunks, headers={"Content-Type": "text/csv"}, timeout=60
        )
        expected = requests.post(f"{server.url}/fit", json=document, timeout=60)
    assert fitted.status_code == expected.status_code == 200, fitted.text
    assert without_formula(fitted.json()) == expected.json()
    assert fitted.json()["formula"] == "y ~ x1 + x2 + x3"


def test_a_long_unknown_name_is_shown_as_an_excerpt() -> None:
    name = "q" * 3000
    for error in (refusal(fit_csv, TRAIN, {name: "1"}), refusal(fit_form, [("train", TRAIN), (name, b"1")])):
        assert error.field is not None and len(error.field) <= 40
        assert len(error.detail) < 300
