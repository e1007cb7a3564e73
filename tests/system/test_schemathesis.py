"""Schemathesis against a live server: every documented operation, a bounded number of cases.

The schema is the document the service serves at ``GET /openapi.json``. Schemathesis
loads it here at import, because its pytest integration builds one test per operation
while collecting; the server, started by a fixture, only exists later. A live test
below checks that the server answers exactly this document.

``schemathesis.pytest.from_fixture`` would load it from the live server instead, but
schemathesis 4.32 reads ``Function._nodeid``, which pytest 9.2 no longer has.

Per operation schemathesis runs three phases: the document's examples, its coverage
phase (boundary and invalid values of every field, missing required fields, methods
the path does not take) and ``MAX_EXAMPLES`` random cases, positive and negative,
derandomized so that CI sees the same cases every run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.request import urlopen

import pytest
import schemathesis
from hypothesis import settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.meta import TestPhase
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import service
from service.openapi import build_document
from service.server import BackgroundServer

pytestmark = pytest.mark.live

MAX_EXAMPLES = 100
DOCUMENT = build_document(service.__version__)
# An explicit default config: a schemathesis.toml lying around must not change the run.
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT, config=schemathesis.Config())
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    """Serve the app with default settings on a free port."""
    with service.serve_in_background(port=0) as running:
        yield running


def test_the_server_serves_the_document_under_test(server: BackgroundServer) -> None:
    with urlopen(f"{server.url}/openapi.json", timeout=30) as answer:
        assert json.load(answer) == json.loads(json.dumps(DOCUMENT))


def test_every_operation_of_the_contract_is_tested() -> None:
    labels = {result.ok().label for result in SCHEMA.get_all_operations()}
    assert labels == {"POST /fit", "POST /predict", "GET /health", "GET /openapi.json", "GET /docs",
                      "GET /metrics"}


@SCHEMA.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None)
def test_api(case: schemathesis.Case, server: BackgroundServer) -> None:
    response = case.call_and_validate(base_url=server.url, checks=CHECKS, timeout=30)
    if case.meta is not None and case.meta.phase.name == TestPhase.EXAMPLES:
        assert response.status_code == 200, response.text
