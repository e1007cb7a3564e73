"""The OpenAPI document (service/openapi.py, service/openapi.json) against the contract and the code.

Two kinds of checks. The contract's endpoints and fields are written out here, apart from
the document, so that a change to either side fails a test. And what the code spells as
well as the document (field names and their order, query parameters, form parts, enums,
defaults, the fields a ``model`` excludes, the errors table, the keys of an answer) is
read from the code and held equal to the document: the document is the one place a
reader looks, and these tests keep it true.
"""

from __future__ import annotations

import copy
import dataclasses
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
from service.errors import TITLES
from service.openapi import build_document
from service.parse.fields import TRAINING_ONLY
from service.parse.forms import FLAGS, PARAMETERS, PARTS
from service.parse.rules import KNOWN
from service.request import INTERVALS, MISSING, Options

# The contract's endpoints and fields, written out here apart from the document.
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
    """Follow `$ref`s inside the document until a node without one (siblings of a `$ref` dropped)."""
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


def answer_schema(document: dict[str, Any], path: str) -> dict[str, Any]:
    """Return the JSON schema of the 200 answer of a POST path, references followed."""
    ok = deref(document, operation(document, "post", path)["responses"]["200"])
    return deref(document, ok["content"]["application/json"]["schema"])


def form_schema(document: dict[str, Any], path: str) -> dict[str, Any]:
    """Return the multipart schema of a POST path, references followed."""
    media = operation(document, "post", path)["requestBody"]["content"]["multipart/form-data"]
    return deref(document, media["schema"])


def parameters(document: dict[str, Any], path: str) -> list[dict[str, Any]]:
    """Return the query parameters of a POST path, references followed."""
    return [deref(document, parameter)
            for parameter in operation(document, "post", path)["parameters"]]


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
def test_request_fields_are_the_ones_the_rules_check_in_their_order(document: dict[str, Any],
                                                                  path: str) -> None:
    documented = list(request_schema(document, path)["properties"])
    expected = [name for name in KNOWN if path == "/predict" or name != "model"]
    assert documented == expected


@pytest.mark.parametrize("path", POSTS)
def test_defaults_are_the_ones_the_code_fills_in(document: dict[str, Any], path: str) -> None:
    defaults = {field.name: field.default for field in dataclasses.fields(Options)}
    for schema in (request_schema(document, path), form_schema(document, path)):
        documented = {name: prop["default"] for name, prop in schema["properties"].items()
                      if "default" in prop}
        assert documented == defaults
        assert all(type(documented[name]) is type(value) for name, value in defaults.items())


def test_enums_are_the_ones_the_code_reads(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["IntervalOption"]["enum"] == list(INTERVALS)
    assert schemas["MissingOption"]["enum"] == list(MISSING)
    kinds = [kind for kind in INTERVALS if kind != "none"]
    assert schemas["Intervals"]["properties"]["kind"]["enum"] == kinds
    assert schemas["FitRequest"]["if"]["properties"]["interval"]["enum"] == kinds


@pytest.mark.parametrize("path", POSTS)
def test_a_field_shares_one_schema_as_json_field_form_field_and_query_parameter(
        document: dict[str, Any], path: str) -> None:
    body = request_schema(document, path)["properties"]
    form = form_schema(document, path)["properties"]
    for parameter in parameters(document, path):
        name = parameter["name"]
        assert body[name]["$ref"] == form[name]["$ref"] == parameter["schema"]["$ref"], name


def test_model_excludes_the_fields_the_rules_refuse_with_it(document: dict[str, Any]) -> None:
    excluded = request_schema(document, "/predict")["dependentSchemas"]["model"]["not"]["anyOf"]
    assert [name for alternative in excluded for name in alternative["required"]] == list(TRAINING_ONLY)


def answers(client: falcon.testing.TestClient) -> list[dict[str, Any]]:
    """Answers of the app to requests that, together, ask for every optional part of an answer."""
    bodies = [
        {"X_train": {"a": [1, 2, 3, 4], "b": [1, 0, 2, 5]}, "y_train": {"u": [1, 2, 4, 3]},
         "X_test": {"a": [5], "b": [1]}, "statistics": True, "interval": "confidence"},
        {"train": {"x": [1, 2, 3, 4, None], "g": ["p", "q", "p", "q", "p"], "y": [1, 3, 2, 5, 4]},
         "formula": "y ~ x + g", "missing": "drop", "test": {"x": [2], "g": ["q"]}},
        {"X_train": [[1, 2], [2, 1], [3, 5]], "y_train": [[1, 2], [2, 3], [4, 4]]},
    ]
    given = []
    for body in bodies:
        answer = client.simulate_post("/fit", json=body)
        assert answer.status_code == 200, answer.text
        given.append(answer.json)
    return given


def test_answer_fields_are_the_contract(document: dict[str, Any]) -> None:
    for path in POSTS:
        assert set(answer_schema(document, path)["properties"]) == set(ANSWER_FIELDS)
        ok = deref(document, operation(document, "post", path)["responses"]["200"])
        assert "text/csv" in ok["content"]


def test_answer_fields_are_the_ones_the_app_gives(document: dict[str, Any],
                                                  client: falcon.testing.TestClient) -> None:
    schema = answer_schema(document, "/fit")
    given = answers(client)
    for answer in given:
        validator(document, "FitAnswer").validate(answer)
        assert set(answer) <= set(schema["properties"]), set(answer) - set(schema["properties"])
        assert set(schema["required"]) <= set(answer)
    assert set().union(*given) == set(schema["properties"])
    statistics = document["components"]["schemas"]["Statistics"]
    block = given[0]["statistics"]
    assert list(block) == statistics["required"] == list(statistics["properties"])
    term = statistics["properties"]["coefficients"]["items"]
    assert list(block["coefficients"][0]) == term["required"] == list(term["properties"])


@pytest.mark.parametrize("path", POSTS)
@pytest.mark.parametrize("status", ERROR_STATUSES)
def test_error_statuses_answer_problem_json(document: dict[str, Any], path: str,
                                            status: str) -> None:
    response = deref(document, operation(document, "post", path)["responses"][status])
    schema = deref(document, response["content"]["application/problem+json"]["schema"])
    assert set(schema["required"]) == {"title", "status", "detail"}
    assert "field" in schema["properties"]


def test_the_errors_table_is_the_one_the_code_titles(document: dict[str, Any]) -> None:
    for path in POSTS:
        statuses = {int(status) for status in operation(document, "post", path)["responses"]}
        # 404 answers paths the document does not have, so no operation lists it.
        assert statuses - {200} == set(TITLES) - {404}
    assert "404" in document["info"]["description"]
    errors = [name for name, response in document["components"]["responses"].items()
              if "application/problem+json" in response["content"]]
    assert len(errors) == len(TITLES)


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
    given = parameters(document, path)
    assert [parameter["name"] for parameter in given] == list(PARAMETERS)
    for parameter in given:
        assert parameter["in"] == "query" and parameter["required"] is False
        assert "multipart/form-data" in parameter["description"]
        schema = deref(document, parameter["schema"])
        # No default: Swagger UI would fill it in, and any query parameter on a JSON body is a 422.
        assert "default" not in parameter["schema"] and "default" not in schema
        flag = schema["type"] == "boolean"
        assert flag == (parameter["name"] in FLAGS)
        assert flag == ("`1` or `0`" in parameter["description"])


@pytest.mark.parametrize("path", POSTS)
def test_form_parts_are_the_ones_tables_reads(document: dict[str, Any], path: str) -> None:
    media = operation(document, "post", path)["requestBody"]["content"]["multipart/form-data"]
    form = form_schema(document, path)
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


@pytest.mark.parametrize(("name", "body"), [
    ("FitRequest", {"X_train": [[1, 2], [3, 4]], "y_train": [1, 2]}),
    ("FitRequest", {"X_train": [1, 2, 3], "y_train": [[1, 2], [3, 4], [5, 6]]}),
    ("FitRequest", {"X_train": {"age": [30, 40]}, "y_train": {"price": [1, 2]},
                    "X_test": [{"age": 35}], "interval": "prediction", "level": 0.9}),
    ("FitRequest", {"X_train": [1, 2], "y_train": [1, 2], "sample_weight": [0, 1],
                    "fit_intercept": False, "positive": True, "statistics": True}),
    ("FitRequest", {"train": {"x": [1, 2], "g": ["a", None]}, "formula": "y ~ x",
                    "missing": "drop"}),
    ("PredictRequest", SEED),
    ("PredictRequest", {"model": {"coef": [1.0], "intercept": 0.5, "n_samples": None},
                        "X_test": [1, 2]}),
    ("PredictRequest", {"model": {"coef": [1.0], "intercept": 0.5}, "test": [{"x": 1}]}),
], ids=["rows", "flat-and-two-targets", "named", "options", "table", "seed", "model",
        "model-and-test-table"])
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
    ("FitRequest", {"missing": "omit"}),
    ("FitRequest", {"formula": 3}),
    ("PredictRequest", {"X_test": None}),
    ("PredictRequest", {"model": {"coef": [1], "intercept": 0}}),
    ("PredictRequest", {"X_train": None, "y_train": None}),
    ("PredictRequest", {"X_train": None, "y_train": None, "model": {"coef": [1, 1]}}),
    ("PredictRequest", {"X_train": None, "y_train": None, "statistics": True,
                        "model": {"coef": [1], "intercept": 0}}),
], ids=["unknown-field", "model-on-fit", "interval-without-X_test", "no-rows",
        "no-columns", "string-number", "boolean-number", "all-zero-weights",
        "negative-weight", "interval-enum", "level-1", "level-0", "string-boolean",
        "missing-enum", "formula-number", "no-X_test", "model-and-training-data",
        "no-training-data", "model-no-intercept", "model-and-statistics"])
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
                   {**one, "intervals": {**one["intervals"], "level": 1}},
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
