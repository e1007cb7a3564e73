"""Tests of the OpenAPI document against the contract."""

from __future__ import annotations

import copy
import json
from typing import Any

import falcon.testing
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from urllib3 import encode_multipart_formdata

from service.openapi import build_document
from service.parse.forms import PARAMETERS, PARTS

# The contract's endpoints and fields, written out here apart from service/openapi.py, so that a
# change to either side fails a test.
ENDPOINTS = [("post", "/fit"), ("post", "/predict"), ("get", "/health"),
             ("get", "/openapi.json"), ("get", "/docs"), ("get", "/metrics")]
REQUEST_FIELDS = ["X_train", "y_train", "X_test", "sample_weight", "fit_intercept",
                  "positive", "statistics", "interval", "level", "model", "missing",
                  "train", "formula", "target", "test", "weight"]
ANSWER_FIELDS = ["coef", "intercept", "predictions", "feature_names", "target_names",
                 "n_samples", "n_features", "n_targets", "rank", "warnings",
                 "statistics", "intervals", "n_dropped", "formula", "design"]
ERROR_STATUSES = ["400", "401", "406", "413", "415", "422", "503", "500"]
POSTS = ["/fit", "/predict"]
BODIES = ["application/json", "text/csv", "multipart/form-data"]
SEED = {"X_train": [[1, 2], [2, 1], [3, 5]], "y_train": [1, 2, 3], "X_test": [[4, 4]]}


def build(version: str) -> dict[str, Any]:
    """Build the document, typed for indexing in tests."""
    return build_document(version)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """Build the document once for the module."""
    return build("1.2.3")


def deref(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow `$ref`s inside the document until a node without one."""
    while "$ref" in node:
        target = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def operation(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    """Return one operation of the document."""
    result: dict[str, Any] = document["paths"][path][method]
    return result


def request_schema(document: dict[str, Any], path: str) -> dict[str, Any]:
    """Return the JSON request schema of a POST path, references followed."""
    body = deref(document, operation(document, "post", path)["requestBody"])
    return deref(document, body["content"]["application/json"]["schema"])


def validator(document: dict[str, Any], name: str) -> Draft202012Validator:
    """Make a JSON Schema validator of one component schema of the document."""
    root = {"components": document["components"],
            "$ref": f"#/components/schemas/{name}"}
    return Draft202012Validator(root)


def test_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    validate(document, cls=OpenAPIV31SpecValidator)
    json.dumps(document, allow_nan=False)


def test_validation_catches_a_broken_document(document: dict[str, Any]) -> None:
    broken = copy.deepcopy(document)
    broken["components"]["schemas"]["Vector"]["type"] = "vector"
    with pytest.raises(OpenAPIValidationError):
        validate(broken, cls=OpenAPIV31SpecValidator)


def test_info_carries_the_version() -> None:
    info = build("9.8.7")["info"]
    assert info["title"] == "fitserve"
    assert info["version"] == "9.8.7"
    assert info["description"]


def test_documents_are_independent() -> None:
    first = build("1")
    first["components"]["schemas"]["Problem"]["required"].append("oops")
    first["paths"]["/fit"]["post"]["requestBody"]["content"]["application/json"][
        "examples"]["rows"]["value"]["X_train"].append([9, 9])
    second = build("1")
    assert "oops" not in second["components"]["schemas"]["Problem"]["required"]
    assert second == build("1")
    assert second["paths"]["/fit"]["post"]["requestBody"]["content"]["application/json"][
        "examples"]["rows"]["value"]["X_train"] == [[1, 2], [2, 1], [3, 5]]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_endpoint_is_documented(document: dict[str, Any], method: str,
                                      path: str) -> None:
    assert "200" in operation(document, method, path)["responses"]


def test_no_endpoint_beyond_the_contract(document: dict[str, Any]) -> None:
    documented = {(method, path) for path, item in document["paths"].items()
                  for method in item}
    assert documented == set(ENDPOINTS)


@pytest.mark.parametrize("path", POSTS)
def test_request_fields_are_the_contract(document: dict[str, Any], path: str) -> None:
    schema = request_schema(document, path)
    expected = REQUEST_FIELDS if path == "/predict" else [f for f in REQUEST_FIELDS if f != "model"]
    assert list(schema["properties"]) == expected
    assert schema["additionalProperties"] is False


def test_answer_fields_are_the_contract(document: dict[str, Any]) -> None:
    for path in POSTS:
        ok = operation(document, "post", path)["responses"]["200"]
        schema = deref(document, ok["content"]["application/json"]["schema"])
        assert set(schema["properties"]) == set(ANSWER_FIELDS)
        assert "text/csv" in ok["content"]


@pytest.mark.parametrize("path", POSTS)
@pytest.mark.parametrize("status", ERROR_STATUSES)
def test_error_statuses_answer_problem_json(document: dict[str, Any], path: str,
                                            status: str) -> None:
    response = deref(document, operation(document, "post", path)["responses"][status])
    schema = deref(document, response["content"]["application/problem+json"]["schema"])
    assert set(schema["required"]) == {"title", "status", "detail"}
    assert "field" in schema["properties"]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_method_not_allowed_is_documented(document: dict[str, Any], method: str,
                                          path: str) -> None:
    response = deref(document, operation(document, method, path)["responses"]["405"])
    assert "application/problem+json" in response["content"]


def test_bearer_auth_is_optional_and_only_on_posts_and_metrics(document: dict[str, Any]) -> None:
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert "token is configured" in scheme["description"]
    assert "security" not in document
    for method, path in ENDPOINTS:
        security = operation(document, method, path)["security"]
        if method == "post" or path == "/metrics":
            assert security == [{"bearerAuth": []}, {}]
        else:
            assert security == []


@pytest.mark.parametrize("path", POSTS)
def test_content_types(document: dict[str, Any], path: str) -> None:
    content = operation(document, "post", path)["requestBody"]["content"]
    assert list(content) == BODIES


@pytest.mark.parametrize("path", POSTS)
def test_query_parameters_are_the_ones_tables_reads(document: dict[str, Any],
                                                    path: str) -> None:
    parameters = operation(document, "post", path)["parameters"]
    assert [parameter["name"] for parameter in parameters] == list(PARAMETERS)
    for parameter in parameters:
        assert parameter["in"] == "query" and parameter["required"] is False
        assert "multipart/form-data" in parameter["description"]
        if parameter["schema"].get("type") == "boolean":
            assert "`1` or `0`" in parameter["description"]


@pytest.mark.parametrize("path", POSTS)
def test_form_parts_are_the_ones_tables_reads(document: dict[str, Any], path: str) -> None:
    media = operation(document, "post", path)["requestBody"]["content"]["multipart/form-data"]
    form = deref(document, media["schema"])
    assert list(form["properties"]) == list(PARTS)
    assert form["additionalProperties"] is False
    assert form["required"] == (["train", "test"] if path == "/predict" else ["train"])
    for part in ("train", "test"):
        # Text read as UTF-8, not any bytes: `format: binary` makes generators send images.
        assert form["properties"][part]["contentMediaType"] == "text/csv"
        assert "format" not in form["properties"][part]
        assert media["encoding"][part] == {"contentType": "text/csv"}


def test_csv_on_predict_is_documented_as_a_422(document: dict[str, Any]) -> None:
    predict = operation(document, "post", "/predict")
    text = predict["requestBody"]["content"]["text/csv"]["schema"]["description"]
    assert "422" in text and "`test`" in text and "multipart" in text
    assert "422" in predict["description"]
    assert "examples" not in predict["requestBody"]["content"]["text/csv"]


def examples(document: dict[str, Any]) -> list[tuple[str, str, str, Any]]:
    """List every request example of the document: (path, media type, name, value)."""
    return [(path, media, name, example["value"])
            for path in POSTS
            for media, body in operation(document, "post", path)["requestBody"]
            ["content"].items()
            for name, example in body.get("examples", {}).items()]


def test_every_body_but_csv_on_predict_has_examples(document: dict[str, Any]) -> None:
    given = {(path, media) for path, media, _, _ in examples(document)}
    expected = {(path, media) for path in POSTS for media in BODIES}
    assert given == expected - {("/predict", "text/csv")}


def test_examples_match_their_schemas(document: dict[str, Any]) -> None:
    for path, media, name, value in examples(document):
        body = operation(document, "post", path)["requestBody"]["content"][media]
        root = {"components": document["components"], **body["schema"]}
        assert Draft202012Validator(root).is_valid(value), (path, media, name)


def test_examples_answer_200(document: dict[str, Any],
                             client: falcon.testing.TestClient) -> None:
    for path, media, name, value in examples(document):
        if media == "application/json":
            data, content_type = json.dumps(value).encode(), media
        elif media == "text/csv":
            data, content_type = value.encode(), media
        else:
            files = {key: (f"{key}.csv", text.encode(), "text/csv")
                     if key in ("train", "test") else text
                     for key, text in value.items()}
            data, content_type = encode_multipart_formdata(files)
        answer = client.simulate_post(path, body=data,
                                      headers={"Content-Type": content_type})
        assert answer.status_code == 200, (path, media, name, answer.text)
        validator(document, "FitAnswer").validate(answer.json)


def test_a_csv_body_on_predict_answers_the_documented_422(
        document: dict[str, Any], client: falcon.testing.TestClient) -> None:
    table = operation(document, "post", "/fit")["requestBody"]["content"]["text/csv"]
    body = next(iter(table["examples"].values()))["value"]
    answer = client.simulate_post("/predict", body=body.encode(),
                                  headers={"Content-Type": "text/csv"})
    assert answer.status_code == 422
    assert answer.json["field"] == "test"


@pytest.mark.parametrize(("name", "body"), [
    ("FitRequest", {"X_train": [[1, 2], [3, 4]], "y_train": [1, 2]}),
    ("FitRequest", {"X_train": [1, 2, 3], "y_train": [[1, 2], [3, 4], [5, 6]]}),
    ("FitRequest", {"X_train": {"age": [30, 40]}, "y_train": {"price": [1, 2]},
                    "X_test": [{"age": 35}], "interval": "prediction", "level": 0.9}),
    ("FitRequest", {"X_train": [1, 2], "y_train": [1, 2], "sample_weight": [0, 1],
                    "fit_intercept": False, "positive": True, "statistics": True}),
    ("PredictRequest", SEED),
    ("PredictRequest", {"model": {"coef": [1.0], "intercept": 0.5, "n_samples": None},
                        "X_test": [1, 2]}),
], ids=["rows", "flat-and-two-targets", "named", "options", "seed", "model"])
def test_valid_requests(document: dict[str, Any], name: str,
                        body: dict[str, Any]) -> None:
    validator(document, name).validate(body)


@pytest.mark.parametrize(("name", "change"), [
    ("FitRequest", {"X_tset": [[1, 2]]}),
    ("FitRequest", {"model": {"coef": [1], "intercept": 0}}),
    ("FitRequest", {"X_test": None, "interval": "confidence"}),
    ("FitRequest", {"X_train": []}),
    ("FitRequest", {"X_train": [[]]}),
    ("FitRequest", {"X_train": [["1.5"]]}),
    ("FitRequest", {"y_train": [True, 2, 3]}),
    ("FitRequest", {"sample_weight": [0, 0, 0]}),
    ("FitRequest", {"sample_weight": [1, -1, 1]}),
    ("FitRequest", {"interval": "bogus"}),
    ("FitRequest", {"level": 1}),
    ("FitRequest", {"level": 0}),
    ("FitRequest", {"fit_intercept": "false"}),
    ("PredictRequest", {"X_test": None}),
    ("PredictRequest", {"model": {"coef": [1], "intercept": 0}}),
    ("PredictRequest", {"X_train": None, "y_train": None}),
    ("PredictRequest", {"X_train": None, "y_train": None, "model": {"coef": [1, 1]}}),
], ids=["unknown-field", "model-on-fit", "interval-without-X_test", "no-rows",
        "no-columns", "string-number", "boolean-number", "all-zero-weights",
        "negative-weight", "interval-enum", "level-1", "level-0", "string-boolean",
        "no-X_test", "model-and-training-data", "no-training-data",
        "model-no-intercept"])
def test_invalid_requests(document: dict[str, Any], name: str,
                          change: dict[str, Any]) -> None:
    body = {**SEED, **change}
    body = {key: value for key, value in body.items() if value is not None}
    assert not validator(document, name).is_valid(body)


def test_answers_validate(document: dict[str, Any]) -> None:
    answer = validator(document, "FitAnswer")
    statistics = {"r_squared": 0.9, "adj_r_squared": None, "residual_std_error": 0.1,
                  "df_residual": 0, "f_statistic": None, "f_p_value": None,
                  "condition_number": 3.2, "coefficients": [
                      {"term": "(Intercept)", "estimate": 1.0, "std_error": None,
                       "t_value": None, "p_value": None, "ci_lower": None,
                       "ci_upper": None}]}
    one: dict[str, Any] = {"coef": [1.0, 2.0], "intercept": 0.5, "predictions": [3.0],
           "feature_names": ["a", "b"], "n_samples": 3, "n_features": 2, "n_targets": 1,
           "rank": None, "warnings": ["Zero residual degrees of freedom."],
           "statistics": statistics,
           "intervals": {"lower": [2.0], "upper": [4.0], "level": 0.95,
                         "kind": "prediction"}}
    answer.validate(one)
    two = {**one, "coef": [[1.0, 2.0], [3.0, 4.0]], "intercept": [0.0, 0.0],
           "predictions": [[1.0, 2.0]], "target_names": ["u", "v"], "n_targets": 2,
           "statistics": [statistics, statistics], "n_samples": None}
    answer.validate(two)
    for broken in [{**one, "rank": 1.5}, {**one, "warnings": None},
                   {key: value for key, value in one.items() if key != "coef"},
                   {**one, "intervals": {**one["intervals"], "kind": "none"}},
                   {**one, "statistics": {**statistics, "df_residual": None}}]:
        assert not answer.is_valid(broken)


def test_health_answer(document: dict[str, Any]) -> None:
    ok = operation(document, "get", "/health")["responses"]["200"]
    schema = ok["content"]["application/json"]["schema"]
    health = Draft202012Validator(schema)
    health.validate({"status": "ok", "version": "1.2.3"})
    assert not health.is_valid({"status": "down", "version": "1.2.3"})
    assert not health.is_valid({"status": "ok"})


def test_metrics_is_prometheus_text_behind_the_token(document: dict[str, Any]) -> None:
    metrics = operation(document, "get", "/metrics")
    assert list(metrics["responses"]["200"]["content"]) == ["text/plain"]
    assert "0.0.4" in metrics["description"]
    unauthorized = deref(document, metrics["responses"]["401"])
    assert "application/problem+json" in unauthorized["content"]


def test_problems_may_carry_the_request_id(document: dict[str, Any]) -> None:
    problem = validator(document, "Problem")
    problem.validate({"title": "Not found", "status": 404, "detail": "No such path.",
                      "request_id": "abc"})
    assert not problem.is_valid({"title": "Not found", "status": 404, "detail": "x",
                                 "request_id": 7})
