"""Looking things up in the OpenAPI document, for its tests (``test_openapi*.py``)."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from service.openapi import build_document

POSTS = ["/fit", "/predict"]
# The first seed example, a body the tests change one field at a time.
SEED = {"X_train": [[1, 2], [2, 1], [3, 5]], "y_train": [1, 2, 3], "X_test": [[4, 4]]}


def build(version: str) -> dict[str, Any]:
    """Build the document, typed for indexing in tests."""
    return build_document(version)


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


def answer_schemas(document: dict[str, Any], path: str) -> list[dict[str, Any]]:
    """Return the JSON schemas of the 200 answer of a POST path (one fit, one fit per group)."""
    ok = deref(document, operation(document, "post", path)["responses"]["200"])
    return [deref(document, schema) for schema in ok["content"]["application/json"]["schema"]["oneOf"]]


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
