"""The OpenAPI contract, written by apispec from what each door declares next to its views.

A door keeps an `ApiDoc`; `ApiDoc.operation` records a view's operation (its summary and description
from the docstring) and returns the view unchanged, so nothing documents at request time. Schemas
may be given as marshmallow classes anywhere apispec's MarshmallowPlugin resolves them (request
bodies, responses); each becomes a component named after its class, without the `Schema` suffix.
"""
from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from typing import Any, TypeVar
from collections.abc import Callable, Iterable

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from .problem_docs import problem_responses

View = TypeVar("View", bound=Callable[..., Any])
SECURED: list[dict[str, list[str]]] = [{"apiKey": []}]
_RULE_VARIABLE = re.compile(r"<(?:[a-z]+:)?([A-Za-z_][A-Za-z0-9_]*)>")


@dataclass
class ApiDoc:
    """The documented operations of one door (a tag of the contract)."""

    name: str
    description: str
    url_prefix: str = ""
    operations: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def operation(self, rule: str, method: str, problems: Iterable[int] = (), **doc: Any) -> Callable[[View], View]:
        """Record `method rule` (a Flask rule under the prefix) with this OpenAPI operation object; `problems`
        adds the problem+json responses of those statuses."""
        def record(view: View) -> View:
            summary, _, description = inspect.cleandoc(view.__doc__ or "").partition("\n")
            operation: dict[str, Any] = {"tags": [self.name], "summary": summary.strip()}
            if description.strip():
                operation["description"] = description.strip()
            operation.update(doc)
            operation["responses"] = {**doc.get("responses", {}), **problem_responses(*problems)}
            self.operations.append((self.url_prefix + rule, method.lower(), operation))
            return view
        return record


def json_content(schema: Any, example: Any = None, media_type: str = "application/json") -> dict[str, Any]:
    body: dict[str, Any] = {"schema": schema}
    if example is not None:
        body["example"] = example
    return {media_type: body}


def response(description: str, schema: Any, example: Any = None) -> dict[str, Any]:
    return {"description": description, "content": json_content(schema, example)}


def build_contract(docs: Iterable[ApiDoc], info: dict[str, Any], security_scheme: dict[str, Any]) -> dict[str, Any]:
    """The contract of these doors, as a dict (OpenAPI 3.1)."""
    spec = APISpec(title="labinterp", version="1.0.0", openapi_version="3.1.0", plugins=[MarshmallowPlugin()],
                   info=info)
    spec.components.security_scheme("apiKey", security_scheme)
    for doc in docs:
        spec.tag({"name": doc.name, "description": doc.description})
        for rule, method, operation in doc.operations:
            spec.path(path=_RULE_VARIABLE.sub(r"{\1}", rule), operations={method: operation})
    return spec.to_dict()
