"""Fixtures shared by the tests, and where a test goes.

``tests/`` mirrors ``service/``: the tests of a module are in the file named after it, in
the matching folder (``service/app.py`` in ``tests/test_app.py``, ``service/parse/json.py``
in ``tests/parse/test_json.py``); a module whose tests fill several files gives each a
suffix (``tests/parse/test_json_parser.py``), and the formula stage
(``formulas.py``, ``formula_design.py``) shares the prefix ``test_formula``. Tests of the
service as a whole rather than of one module are in ``tests/system/``: the contract through
the app or a live server (hostile input, inference, accuracy, security, reliability,
schemathesis), the README's examples and the notebook, the docs page in a browser, nginx
and the deployment files, and the repository itself. A module that is not a test sits
beside the tests that use it (``formula_tables.py``, ``system/cluster.py``); the data are in
``tests/data`` and ``tests/fixtures``. pytest imports a test file by its name alone (the
folders have no ``__init__.py``), so no two test files share a name.
"""

from __future__ import annotations

import falcon.testing
import pytest

import service
from service.settings import Settings


@pytest.fixture
def client() -> falcon.testing.TestClient:
    """A test client of the app with the default settings."""
    return falcon.testing.TestClient(service.create_app(Settings()))
