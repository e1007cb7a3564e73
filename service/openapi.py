"""The OpenAPI 3.1 document of fitserve's HTTP contract, served at ``GET /openapi.json``.

The document is data: ``service/openapi.json``, written by hand from the contract and
shipped as package data. Every schema, parameter, example and error response is spelled
once there, under ``components``, and pointed at with ``$ref`` wherever it is used (a JSON
field, a query parameter and a form field of the same option share one schema; an example
shared by ``/fit`` and ``/predict`` is one entry of ``components/examples``).

Only the package version comes from code. What the code also spells (the field names and
their order, the query parameters and form parts, the enums, the errors table) is held
equal to the document by ``tests/test_openapi_code.py``, so a change to either side fails there.
Pure data: no falcon, no network.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import orjson

#: The file, inside the package, that holds the document.
SOURCE = "openapi.json"

# Read once: the file does not change while the service runs, and a request must not
# wait on the disk.
_TEXT = resources.files("service").joinpath(SOURCE).read_bytes()


def build_document(version: str) -> dict[str, object]:
    """Build the OpenAPI 3.1 document of the contract, for package ``version``.

    Each call parses the data afresh, so that no two callers share (and could change)
    one another's document.
    """
    document: dict[str, Any] = orjson.loads(_TEXT)
    info = document["info"]
    document["info"] = {"title": info.pop("title"), "version": version, **info}
    return document
