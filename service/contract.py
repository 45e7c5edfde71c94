"""Print the OpenAPI contract generated from the code: `python -m service.contract > openapi.yaml`."""
from __future__ import annotations

import sys

from .app import create_app, service_of
from .config import Settings


def generate() -> str:
    """The contract of an app with default settings and the bundled knowledge."""
    app = create_app(Settings(api_keys=("contract-generation-only",)))  # no key file is made for this
    return service_of(app).contract_yaml


if __name__ == "__main__":
    sys.stdout.write(generate())
