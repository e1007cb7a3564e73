"""The OpenAPI document against the code that spells the same facts.

Field names and their order, query parameters, form parts, flags, enums, defaults, the
fields a ``model`` excludes, the errors table and the keys of an answer are read from the
code and held equal to the document: the document is the one place a reader looks, and
these tests keep it true.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import falcon.testing
import pytest

from service.errors import TITLES
from service.parse.fields import TRAINING_ONLY
from service.parse.forms import FLAGS, PARAMETERS, PARTS
from service.parse.rules import KNOWN
from service.request import INTERVALS, MISSING, Options
from tests.openapi_lookup import (
    POSTS,
    answer_schema,
    build,
    deref,
    form_schema,
    operation,
    parameters,
    request_schema,
    validator,
)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """Build the document once for the module."""
    return build("1.2.3")


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


def test_the_errors_table_is_the_one_the_code_titles(document: dict[str, Any]) -> None:
    for path in POSTS:
        statuses = {int(status) for status in operation(document, "post", path)["responses"]}
        # 404 answers paths the document does not have, so no operation lists it.
        assert statuses - {200} == set(TITLES) - {404}
    assert "404" in document["info"]["description"]
    errors = [name for name, response in document["components"]["responses"].items()
              if "application/problem+json" in response["content"]]
    assert len(errors) == len(TITLES)


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
