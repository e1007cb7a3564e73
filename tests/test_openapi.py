"""The OpenAPI document (service/openapi.py, service/openapi.json) against the contract.

A valid OpenAPI 3.1 document, built from its data file with the package version, whose
references all lead somewhere, that describes the contract's endpoints, fields, answers
and errors, with examples the service answers. The contract's endpoints and fields are
written out here, apart from the document, so that a change to either side fails a test.
"""

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

import service
from service import openapi
from tests.openapi_lookup import (
    POSTS,
    answer_schemas,
    build,
    deref,
    form_schema,
    operation,
    parameters,
    request_schema,
    validator,
)

# The contract's endpoints, fields and statuses, written out here apart from the document.
ENDPOINTS = [("post", "/fit"), ("post", "/predict"), ("get", "/health"),
             ("get", "/openapi.json"), ("get", "/docs"), ("get", "/metrics")]
REQUEST_FIELDS = ["X_train", "y_train", "X_test", "sample_weight", "fit_intercept",
                  "positive", "statistics", "interval", "level", "model", "missing",
                  "cov_type", "anova", "train", "formula", "target", "test", "weight", "by"]
ANSWER_FIELDS = ["coef", "intercept", "predictions", "feature_names", "target_names",
                 "n_samples", "n_features", "n_targets", "rank", "warnings",
                 "statistics", "intervals", "n_dropped", "anova", "formula", "design"]
GROUP_ANSWER_FIELDS = ["by", "groups", "predictions", "intervals"]
ERROR_STATUSES = ["400", "401", "406", "413", "415", "422", "503", "500"]
BODIES = ["application/json", "text/csv", "multipart/form-data"]


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """Build the document once for the module."""
    return build("1.2.3")


def test_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    validate(document, cls=OpenAPIV31SpecValidator)
    json.dumps(document, allow_nan=False)


def test_validation_catches_a_broken_document(document: dict[str, Any]) -> None:
    broken = copy.deepcopy(document)
    broken["components"]["schemas"]["Vector"]["type"] = "vector"
    with pytest.raises(OpenAPIValidationError):
        validate(broken, cls=OpenAPIV31SpecValidator)


def test_every_reference_points_at_something(document: dict[str, Any]) -> None:
    def references(node: object) -> list[str]:
        if isinstance(node, dict):
            own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return own + [ref for value in node.values() for ref in references(value)]
        if isinstance(node, list):
            return [ref for value in node for ref in references(value)]
        return []

    used = set(references(document))
    for ref in used:
        assert deref(document, {"$ref": ref}), ref
    # Nothing in components is left unused (an entry no one points at is a stale copy),
    # but NotFound: 404 answers a path that is not in the document.
    declared = {f"#/components/{kind}/{name}" for kind, entries in document["components"].items()
                if kind != "securitySchemes" for name in entries}
    assert declared - used == {"#/components/responses/NotFound"}


def test_info_carries_the_version() -> None:
    info = build("9.8.7")["info"]
    assert list(info) == ["title", "version", "description"]
    assert info["title"] == "fitserve"
    assert info["version"] == "9.8.7"
    assert info["description"]


def test_the_data_file_holds_everything_but_the_version() -> None:
    source = json.loads(openapi._TEXT)
    assert "version" not in source["info"]
    built = build("9.8.7")
    del built["info"]["version"]
    assert built == source


def test_documents_are_independent() -> None:
    first = build("1")
    first["components"]["schemas"]["Problem"]["required"].append("oops")
    first["components"]["examples"]["rows"]["value"]["X_train"].append([9, 9])
    second = build("1")
    assert "oops" not in second["components"]["schemas"]["Problem"]["required"]
    assert second == build("1")
    assert second["components"]["examples"]["rows"]["value"]["X_train"] == [[1, 2], [2, 1], [3, 5]]


def test_the_app_serves_the_document(client: falcon.testing.TestClient) -> None:
    answer = client.simulate_get("/openapi.json")
    assert answer.status_code == 200
    assert answer.json == build(service.__version__)


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


@pytest.mark.parametrize("path", POSTS)
def test_a_field_shares_one_schema_as_json_field_form_field_and_query_parameter(
        document: dict[str, Any], path: str) -> None:
    body = request_schema(document, path)["properties"]
    form = form_schema(document, path)["properties"]
    for parameter in parameters(document, path):
        name = parameter["name"]
        assert body[name]["$ref"] == form[name]["$ref"] == parameter["schema"]["$ref"], name


def test_answer_fields_are_the_contract(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for path in POSTS:
        assert answer_schemas(document, path) == [schemas["FitAnswer"], schemas["GroupAnswer"]]
        ok = deref(document, operation(document, "post", path)["responses"]["200"])
        assert "text/csv" in ok["content"]
    assert list(schemas["FitAnswer"]["properties"]) == ANSWER_FIELDS
    assert list(schemas["GroupAnswer"]["properties"]) == GROUP_ANSWER_FIELDS


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


def test_csv_on_predict_is_documented_as_a_422(document: dict[str, Any]) -> None:
    predict = operation(document, "post", "/predict")
    text = predict["requestBody"]["content"]["text/csv"]["schema"]["description"]
    assert "422" in text and "`test`" in text and "multipart" in text
    assert "422" in predict["description"]
    assert "examples" not in predict["requestBody"]["content"]["text/csv"]


def examples(document: dict[str, Any]) -> list[tuple[str, str, str, Any]]:
    """List every request example of the document: (path, media type, name, value)."""
    return [(path, media, name, deref(document, example)["value"])
            for path in POSTS
            for media, body in operation(document, "post", path)["requestBody"]
            ["content"].items()
            for name, example in body.get("examples", {}).items()]


def test_every_body_but_csv_on_predict_has_examples(document: dict[str, Any]) -> None:
    given = {(path, media) for path, media, _, _ in examples(document)}
    expected = {(path, media) for path in POSTS for media in BODIES}
    assert given == expected - {("/predict", "text/csv")}


def test_each_example_is_spelled_once(document: dict[str, Any]) -> None:
    values = [json.dumps(example["value"], sort_keys=True)
              for example in document["components"]["examples"].values()]
    assert len(values) == len(set(values))
    for path in POSTS:
        for body in operation(document, "post", path)["requestBody"]["content"].values():
            for example in body.get("examples", {}).values():
                assert "$ref" in example and "value" not in example


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
    body = deref(document, next(iter(table["examples"].values())))["value"]
    answer = client.simulate_post("/predict", body=body.encode(),
                                  headers={"Content-Type": "text/csv"})
    assert answer.status_code == 422
    assert answer.json["field"] == "test"


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
