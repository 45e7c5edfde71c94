"""Shared fixtures: the app, its test client, the contract, and where shared/ material lives."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from service.app import create_app
from service.config import Settings

pytest_plugins = ["tests.browser"]  # the `browser` and `page` fixtures of the browser tests

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
# The API key of the test apps and servers: the service never answers its patient paths without one.
TEST_KEY = "test-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TEST_KEY}"}


def make_app(**settings: Any):
    """The service as tests build it: the test key, unless a test gives other keys."""
    settings.setdefault("api_keys", (TEST_KEY,))
    return create_app(Settings(**settings))


def keyed_client(app):
    """A test client that sends the test key with every request (as an authorised caller would)."""
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = AUTH["Authorization"]
    return client


@pytest.fixture(scope="session")
def app():
    return make_app()


@pytest.fixture()
def client(app):
    return keyed_client(app)


@pytest.fixture(scope="session")
def spec() -> dict[str, Any]:
    """The committed contract."""
    return yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def conform(spec):
    """Assert a test-client response is documented in openapi.yaml and matches its schema."""
    from .contract_check import ResponseChecker

    return ResponseChecker(spec)
