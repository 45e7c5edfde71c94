"""GET /healthz, GET /readyz and GET /openapi.yaml: open even when API keys are required (probes
and integration teams need them without a key; they reveal no patient data)."""
from __future__ import annotations

import yaml
from flask import Response, current_app, jsonify
from flask.typing import ResponseReturnValue
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

blp = Blueprint("service", __name__, description="Service health and the contract.")


class HealthSchema(Schema):
    status = fields.String(required=True)
    knowledge_version = fields.String(required=True)


@blp.route("/healthz", methods=["GET"])
@blp.doc(operationId="health")
@blp.alt_response(200, schema=HealthSchema, success=True, description="The service is up and its knowledge loaded.")
def health() -> ResponseReturnValue:
    """Liveness: the process answers and its knowledge is loaded."""
    kb = current_app.extensions["labinterp.knowledge"]
    return jsonify({"status": "ok", "knowledge_version": kb.version})


class ReadinessChecksSchema(Schema):
    knowledge = fields.String(required=True, metadata={"description": "The name the knowledge folder gives itself (knowledge.yaml)."})
    analytes = fields.Integer(required=True, metadata={"description": "Analytes interpreted by the start-up self-test."})
    conversions = fields.Integer(required=True, metadata={
        "description": "Unit conversions derived by pint at start-up and verified through the pipeline."})


class ReadinessSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(("ready",)))
    knowledge_version = fields.String(required=True)
    checks = fields.Nested(ReadinessChecksSchema, required=True)


@blp.route("/readyz", methods=["GET"])
@blp.doc(operationId="ready")
@blp.alt_response(200, schema=ReadinessSchema, success=True, description=(
    "Ready: the knowledge is loaded and validated, every conversion factor was derived and verified, "
    "and the start-up self-test interpreted a result per analyte and unit correctly. A process that "
    "fails any of these never starts, so it never answers here."))
def ready() -> ResponseReturnValue:
    """Readiness: the start-up checks passed in this process."""
    kb = current_app.extensions["labinterp.knowledge"]
    return jsonify({"status": "ready", "knowledge_version": kb.version,
                    "checks": current_app.extensions["labinterp.readiness"]})


@blp.route("/openapi.yaml", methods=["GET"])
@blp.doc(operationId="contract", responses={"200": {
    "description": "This contract, as OpenAPI 3.1 YAML.",
    "content": {"application/yaml": {"schema": {
        "type": "object", "required": ["openapi", "info", "paths"],
        "description": "The OpenAPI document."}}}}})
def contract() -> ResponseReturnValue:
    """The OpenAPI contract of this running service."""
    text = current_app.extensions["labinterp.contract_yaml"]
    return Response(text, mimetype="application/yaml")


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
