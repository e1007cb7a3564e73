"""The OpenAPI document against the code that spells the same facts.

Field names and their order, query parameters, form parts, flags, enums, defaults, the
fields a ``model`` excludes, the errors table and the keys of an answer are read from the
code and held equal to the document: the document is the one place a reader looks, and
these tests keep it true.

A field of the contract may be described before the code reads it (``AHEAD_OF_THE_CODE``):
until then it is left out of the comparisons with the code, and the service must refuse it
with a 422 naming it, which is what the document promises for a field it does not take.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import falcon.testing
import pytest

from service.errors import TITLES
from service.parse.fields import TRAINING_ONLY
from service.parse.forms import FLAGS, PARAMETERS, PARTS
from service.parse.rules import KNOWN
from service.request import COV_TYPES as CODE_COV_TYPES
from service.request import INTERVALS, MISSING, Options
from tests.openapi_lookup import (
    POSTS,
    SEED,
    build,
    deref,
    form_schema,
    operation,
    parameters,
    request_schema,
    validator,
)

#: Fields of the contract the document may describe before the code reads them. Once the code
#: reads one, it is compared with the code like any other field (the code reads them all now).
AHEAD_OF_THE_CODE: tuple[str, ...] = ()
COV_TYPES = list(CODE_COV_TYPES)


def as_the_code_reads(documented: Sequence[str], code: Sequence[str]) -> list[str]:
    """The documented names that the code knows too, in the document's order.

    A documented name the code does not know must be one of ``AHEAD_OF_THE_CODE``.
    """
    ahead = [name for name in documented if name not in code]
    assert set(ahead) <= set(AHEAD_OF_THE_CODE), ahead
    return [name for name in documented if name in code]


def unread() -> list[str]:
    """The fields of ``AHEAD_OF_THE_CODE`` that the rules do not read yet."""
    return [name for name in AHEAD_OF_THE_CODE if name not in KNOWN]


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """Build the document once for the module."""
    return build("1.2.3")


@pytest.mark.parametrize("path", POSTS)
def test_request_fields_are_the_ones_the_rules_check_in_their_order(document: dict[str, Any],
                                                                  path: str) -> None:
    documented = list(request_schema(document, path)["properties"])
    expected = [name for name in KNOWN if path == "/predict" or name != "model"]
    assert as_the_code_reads(documented, KNOWN) == expected


def test_a_field_the_code_does_not_read_yet_is_refused_naming_it(
        client: falcon.testing.TestClient) -> None:
    values = {"cov_type": "HC1", "anova": True, "by": "x"}
    for name in unread():
        answer = client.simulate_post("/fit", json={**SEED, name: values[name]})
        assert answer.status_code == 422, name
        assert answer.json["field"] == name


@pytest.mark.parametrize("path", POSTS)
def test_defaults_are_the_ones_the_code_fills_in(document: dict[str, Any], path: str) -> None:
    defaults = {field.name: field.default for field in dataclasses.fields(Options)}
    for schema in (request_schema(document, path), form_schema(document, path)):
        documented = {name: prop["default"] for name, prop in schema["properties"].items()
                      if "default" in prop}
        assert set(documented) - set(defaults) <= set(AHEAD_OF_THE_CODE)
        documented = {name: documented[name] for name in as_the_code_reads(list(documented), list(defaults))}
        assert documented == defaults
        assert all(type(documented[name]) is type(value) for name, value in defaults.items())


def test_enums_are_the_ones_the_code_reads(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["IntervalOption"]["enum"] == list(INTERVALS)
    assert schemas["MissingOption"]["enum"] == list(MISSING)
    assert schemas["CovTypeOption"]["enum"] == COV_TYPES
    assert schemas["Statistics"]["properties"]["cov_type"]["enum"] == COV_TYPES
    kinds = [kind for kind in INTERVALS if kind != "none"]
    assert schemas["Intervals"]["properties"]["kind"]["enum"] == kinds
    assert schemas["FitRequest"]["if"]["properties"]["interval"]["enum"] == kinds


def test_model_excludes_the_fields_the_rules_refuse_with_it(document: dict[str, Any]) -> None:
    excluded = request_schema(document, "/predict")["dependentSchemas"]["model"]["not"]["anyOf"]
    documented = [name for alternative in excluded for name in alternative["required"]]
    assert as_the_code_reads(documented, TRAINING_ONLY) == list(TRAINING_ONLY)
    assert documented == ["X_train", "y_train", "sample_weight", "train", "formula", "target", "weight",
                          "by", "statistics", "interval", "cov_type", "anova"]


def answers(client: falcon.testing.TestClient) -> list[dict[str, Any]]:
    """Answers of the app to requests that, together, ask for every optional part of an answer.

    A part that a field of ``AHEAD_OF_THE_CODE`` asks for is asked for once the code reads it.
    """
    ahead = unread()
    robust = {name: value for name, value in (("cov_type", "HC1"), ("anova", True)) if name not in ahead}
    bodies = [
        {"X_train": {"a": [1, 2, 3, 4], "b": [1, 0, 2, 5]}, "y_train": {"u": [1, 2, 4, 3]},
         "X_test": {"a": [5], "b": [1]}, "statistics": True, "interval": "confidence", **robust},
        {"train": {"x": [1, 2, 3, 4, None], "g": ["p", "q", "p", "q", "p"], "y": [1, 3, 2, 5, 4]},
         "formula": "y ~ x + g", "missing": "drop", "test": {"x": [2], "g": ["q"]}},
        {"X_train": [[1, 2], [2, 1], [3, 5]], "y_train": [[1, 2], [2, 3], [4, 4]]},
    ]
    if "by" not in ahead:
        bodies.append({"train": {"store": ["a", "a", "a", "b", "b", "b"], "x": [1, 2, 3, 1, 2, 4],
                                 "y": [1, 3, 2, 2, 3, 7]},
                       "formula": "y ~ x", "by": "store", "interval": "prediction",
                       "test": {"store": ["b", "a"], "x": [3, 3]}})
    given = []
    for body in bodies:
        answer = client.simulate_post("/fit", json=body)
        assert answer.status_code == 200, answer.text
        given.append(answer.json)
    return given


def test_answer_fields_are_the_ones_the_app_gives(document: dict[str, Any],
                                                  client: falcon.testing.TestClient) -> None:
    schemas = document["components"]["schemas"]
    schema = schemas["FitAnswer"]
    given = answers(client)
    fits = [answer for answer in given if "groups" not in answer]
    for answer in fits:
        validator(document, "FitAnswer").validate(answer)
        assert set(answer) <= set(schema["properties"]), set(answer) - set(schema["properties"])
        assert set(schema["required"]) <= set(answer)
    assert set(schema["properties"]) - set().union(*fits) <= set(unread())
    for grouped in (answer for answer in given if "groups" in answer):
        validator(document, "GroupAnswer").validate(grouped)
        assert set(grouped) == set(schemas["GroupAnswer"]["properties"])
        for entry in grouped["groups"]:
            validator(document, "GroupFit").validate(entry)
            assert set(entry) - {"group"} <= set(schema["properties"])
    statistics = schemas["Statistics"]
    block = given[0]["statistics"]
    assert list(block) == [name for name in statistics["properties"] if name in block]
    assert set(statistics["required"]) <= set(block)
    # `cov_type` says which covariance the statistics use, once the code reads it.
    assert set(statistics["properties"]) - set(block) <= {"cov_type"} & set(unread())
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
    assert as_the_code_reads([parameter["name"] for parameter in given], PARAMETERS) == list(PARAMETERS)
    fields = form_schema(document, path)["properties"]
    assert [parameter["name"] for parameter in given] == [name for name in fields if name not in ("train", "test")]
    for parameter in given:
        assert parameter["in"] == "query" and parameter["required"] is False
        assert "multipart/form-data" in parameter["description"]
        schema = deref(document, parameter["schema"])
        # No default: Swagger UI would fill it in, and any query parameter on a JSON body is a 422.
        assert "default" not in parameter["schema"] and "default" not in schema
        flag = schema["type"] == "boolean"
        if parameter["name"] in PARAMETERS:
            assert flag == (parameter["name"] in FLAGS)
        assert flag == ("`1` or `0`" in parameter["description"])


@pytest.mark.parametrize("path", POSTS)
def test_form_parts_are_the_ones_tables_reads(document: dict[str, Any], path: str) -> None:
    media = operation(document, "post", path)["requestBody"]["content"]["multipart/form-data"]
    form = form_schema(document, path)
    assert as_the_code_reads(list(form["properties"]), PARTS) == list(PARTS)
    assert form["additionalProperties"] is False
    assert form["required"] == (["train", "test"] if path == "/predict" else ["train"])
    for part in ("train", "test"):
        # Text read as UTF-8, not any bytes: `format: binary` makes generators send images.
        assert form["properties"][part]["contentMediaType"] == "text/csv"
        assert "format" not in form["properties"][part]
        assert media["encoding"][part] == {"contentType": "text/csv"}
