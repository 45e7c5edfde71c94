"""openapi.yaml is valid OpenAPI 3.1, is what the code generates, and matches the app's routes."""
from __future__ import annotations

import re

from openapi_spec_validator import validate

from service.contract import generate

from .conftest import ROOT


def test_spec_is_valid_openapi_31(spec):
    assert spec["openapi"].startswith("3.1")
    validate(spec)  # raises on any violation of the OpenAPI 3.1 schema


def test_committed_spec_is_what_the_code_generates():
    committed = (ROOT / "openapi.yaml").read_text(encoding="utf-8")
    assert committed == generate(), "openapi.yaml is stale: run `make openapi` and commit it"


def test_served_contract_is_the_committed_one(client):
    resp = client.get("/openapi.yaml")
    assert resp.status_code == 200 and resp.mimetype == "application/yaml"
    assert resp.get_data(as_text=True) == (ROOT / "openapi.yaml").read_text(encoding="utf-8")


def test_routes_and_methods_match_the_spec(app, spec):
    served: set[tuple[str, str]] = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.startswith("web."):
            continue  # the clinician form's HTML pages are not part of the JSON contract
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        served |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(p, m) for p, ops in spec["paths"].items() for m in ops if m in
                  ("get", "post", "put", "patch", "delete")}
    assert served == documented


def test_every_operation_documents_its_errors_as_problem_json(spec):
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method == "parameters":
                continue
            for status, resp in op["responses"].items():
                if status.startswith(("4", "5")):
                    # FHIR clients expect OperationOutcome, HL7 v2 clients an ACK (in the media type they
                    # sent); every other door speaks RFC 9457.
                    expected = ["application/fhir+json"] if path.startswith("/fhir/") else \
                        ["x-application/hl7-v2+er7", "text/plain"] if path.startswith("/hl7v2/") else \
                        ["application/problem+json"]
                    assert list(resp["content"]) == expected, (path, method, status)
            if method == "post":
                assert {"400", "413", "415", "422"} <= set(op["responses"]), (path, method)


def test_documented_examples_validate_against_their_schemas(spec, conform):
    from jsonschema import Draft202012Validator

    from .contract_check import SPEC_URI

    op = spec["paths"]["/v1/interpretations"]["post"]
    pairs = [(op["requestBody"]["content"]["application/json"], "/components/schemas/Panel"),
             (op["responses"]["200"]["content"]["application/json"], "/components/schemas/Report")]
    for content, pointer in pairs:
        assert content["example"]
        validator = Draft202012Validator({"$ref": f"{SPEC_URI}#{pointer}"}, registry=conform.registry)
        assert not list(validator.iter_errors(content["example"])), pointer
