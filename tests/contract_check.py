"""Checks a response against openapi.yaml: status documented, content type documented, body valid."""
from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_URI = "urn:labinterp:openapi"


class ResponseChecker:
    def __init__(self, spec: dict[str, Any]):
        self.spec = spec
        self.registry = Registry().with_resource(SPEC_URI, Resource.from_contents(spec, DRAFT202012))

    def operation(self, method: str, path: str) -> dict[str, Any]:
        return self.spec["paths"][path][method.lower()]

    def __call__(self, method: str, path: str, response: Any) -> Any:
        """Validate and return the decoded body. `path` is the templated spec path."""
        op = self.operation(method, path)
        status = str(response.status_code)
        assert status in op["responses"], f"{method} {path}: status {status} is not documented"
        documented = op["responses"][status].get("content", {})
        mimetype = response.mimetype
        assert mimetype in documented, f"{method} {path} {status}: {mimetype} not in {list(documented)}"
        schema = documented[mimetype].get("schema")
        body = response.get_data(as_text=True)
        if mimetype.endswith("json"):
            data = json.loads(body)
            if schema is not None:
                pointer = self._pointer(method, path, status, mimetype)
                validator = Draft202012Validator({"$ref": f"{SPEC_URI}#{pointer}"}, registry=self.registry)
                errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
                assert not errors, f"{method} {path} {status}: " + "; ".join(
                    f"{list(e.path)}: {e.message}" for e in errors[:5])
            return data
        return body

    @staticmethod
    def _pointer(method: str, path: str, status: str, mimetype: str) -> str:
        esc = path.replace("~", "~0").replace("/", "~1")
        mt = mimetype.replace("~", "~0").replace("/", "~1")
        return f"/paths/{esc}/{method.lower()}/responses/{status}/content/{mt}/schema"
