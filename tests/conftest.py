"""Fixtures shared by the tests."""

from __future__ import annotations

import falcon.testing
import pytest

import service
from service.settings import Settings


@pytest.fixture
def client() -> falcon.testing.TestClient:
    """A test client of the app with the default settings."""
    return falcon.testing.TestClient(service.create_app(Settings()))
