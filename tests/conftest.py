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


@pytest.fixture(scope="session")
def app():
    return create_app(Settings())


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def spec() -> dict[str, Any]:
    """The committed contract."""
    return yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def conform(spec):
    """Assert a test-client response is documented in openapi.yaml and matches its schema."""
    from .contract_check import ResponseChecker

    return ResponseChecker(spec)
