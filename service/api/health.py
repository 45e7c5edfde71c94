"""GET /healthz, GET /readyz and GET /openapi.yaml: open even when API keys are required (probes
and integration teams need them without a key; they reveal no patient data)."""
from __future__ import annotations

from typing import Any
from collections.abc import Callable

import yaml
from flask import Blueprint, Response
from flask.typing import ResponseReturnValue
from marshmallow import Schema, fields, validate

from ..core.knowledge import Knowledge
from ..http.contract import ApiDoc, response
from ..http.door import Door
from ..http.writer import json_response


class HealthSchema(Schema):
    status = fields.String(required=True)
    knowledge_version = fields.String(required=True)


class ReadinessChecksSchema(Schema):
    knowledge = fields.String(required=True, metadata={"description": "The name the knowledge folder gives itself (knowledge.yaml)."})
    analytes = fields.Integer(required=True, metadata={"description": "Analytes interpreted by the start-up self-test."})
    conversions = fields.Integer(required=True, metadata={
        "description": "Unit conversions derived by pint at start-up and verified through the pipeline."})


class ReadinessSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(("ready",)))
    knowledge_version = fields.String(required=True)
    checks = fields.Nested(ReadinessChecksSchema, required=True)


READY = ("Ready: the knowledge is loaded and validated, every conversion factor was derived and verified, "
         "and the start-up self-test interpreted a result per analyte and unit correctly. A process that "
         "fails any of these never starts, so it never answers here.")
CONTRACT_RESPONSE = {"description": "This contract, as OpenAPI 3.1 YAML.", "content": {"application/yaml": {"schema": {
    "type": "object", "required": ["openapi", "info", "paths"], "description": "The OpenAPI document."}}}}


def make_door(kb: Knowledge, readiness: dict[str, Any], contract: Callable[[], str]) -> Door:
    """`contract` gives the contract's YAML, written once every door is known."""
    bp = Blueprint("service", __name__)
    doc = ApiDoc("service", "Service health and the contract.")
    healthy = {"status": "ok", "knowledge_version": kb.version}
    ready_answer = {"status": "ready", "knowledge_version": kb.version, "checks": readiness}

    @bp.get("/healthz")
    @doc.operation("/healthz", "get", operationId="health",
                   responses={"200": response("The service is up and its knowledge loaded.", HealthSchema)})
    def health() -> ResponseReturnValue:
        """Liveness: the process answers and its knowledge is loaded."""
        return json_response(healthy)

    @bp.get("/readyz")
    @doc.operation("/readyz", "get", operationId="ready", responses={"200": response(READY, ReadinessSchema)})
    def ready() -> ResponseReturnValue:
        """Readiness: the start-up checks passed in this process."""
        return json_response(ready_answer)

    @bp.get("/openapi.yaml")
    @doc.operation("/openapi.yaml", "get", operationId="contract", responses={"200": CONTRACT_RESPONSE})
    def contract_yaml() -> ResponseReturnValue:
        """The OpenAPI contract of this running service."""
        return Response(contract(), mimetype="application/yaml")

    return Door(bp, doc)


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, so the committed contract reads like prose."""


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)


def render_spec(spec: dict) -> str:
    """The spec as YAML, `openapi` first, in a stable order."""
    ordered = {"openapi": spec.get("openapi"), **{k: v for k, v in spec.items() if k != "openapi"}}
    return yaml.dump(ordered, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)
