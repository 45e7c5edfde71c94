"""GET /cds-services and POST /cds-services/<id>: CDS Hooks 2.0 over the same core; errors as problem+json."""
from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask.typing import ResponseReturnValue
from marshmallow import Schema, ValidationError, fields, validate

from ..config import Settings
from ..http.body import read_json
from ..http.contract import SECURED, ApiDoc, json_content, response
from ..http.door import Door
from ..http.problems import ApiProblem
from ..http.writer import json_response
from ..core.errors import Problem, flatten_messages
from ..core.knowledge import Knowledge
from ..core.report import PanelReport
from ..core.strict import StrictSchema
from ..core.vocabulary import SEVERITIES
from ..ops import metrics
from .service import (
    HOOK, SERVICE_ID, PrefetchInvalid, PrefetchMissing, analyte_keys, cards, discovery, prefetch_kinds,
)

MAX_PREFETCH_KEY = 100  # characters in a prefetch key


class HookContextSchema(StrictSchema):
    userId = fields.String(required=True, validate=validate.Length(min=1, max=200))
    patientId = fields.String(required=True, validate=validate.Length(min=1, max=200))
    encounterId = fields.String(validate=validate.Length(min=1, max=200))


class HookRequestSchema(StrictSchema):
    hook = fields.String(required=True, validate=validate.OneOf([HOOK]))
    hookInstance = fields.String(required=True, validate=validate.Length(min=1, max=100))
    fhirServer = fields.String(validate=validate.Length(max=2000), metadata={"description": "Not used: the service never fetches."})
    fhirAuthorization = fields.Dict()
    context = fields.Nested(HookContextSchema, required=True)
    prefetch = fields.Dict(keys=fields.String(validate=validate.Length(max=MAX_PREFETCH_KEY)), values=fields.Raw(allow_none=True),
                           metadata={"description": "FHIR resources (searches as searchset Bundles) or null, by the "
                                                    "keys of the discovery document. `patient` and each analyte key "
                                                    "are required (null means no data); an analyte's older results "
                                                    "are the newest one's history."})
    extension = fields.Dict()


class SourceSchema(Schema):
    label = fields.String(required=True)


class CardSchema(Schema):
    uuid = fields.String(required=True)
    summary = fields.String(required=True, validate=validate.Length(max=139))
    indicator = fields.String(required=True, validate=validate.OneOf(SEVERITIES))
    detail = fields.String(required=True)
    source = fields.Nested(SourceSchema, required=True)


class CardsSchema(Schema):
    cards = fields.List(fields.Nested(CardSchema), required=True)


class ServiceSchema(Schema):
    hook = fields.String(required=True)
    id = fields.String(required=True)
    title = fields.String(required=True)
    description = fields.String(required=True)
    prefetch = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    usageRequirements = fields.String(required=True)


class DiscoverySchema(Schema):
    services = fields.List(fields.Nested(ServiceSchema), required=True)


_request_schema = HookRequestSchema()


def make_door(kb: Knowledge, settings: Settings) -> Door:
    bp = Blueprint("cds", __name__, url_prefix="/cds-services")
    doc = ApiDoc("cds", "CDS Hooks 2.0 (patient-view).", "/cds-services")
    services = discovery(kb)

    @bp.get("")
    @doc.operation("", "get", (401, 500), operationId="cdsDiscovery", security=SECURED,
                   responses={"200": response("The one service and its prefetch templates.", DiscoverySchema)})
    def discover() -> ResponseReturnValue:
        """CDS Hooks discovery."""
        return json_response(services)

    @bp.post("/<string:service_id>")
    @doc.operation("/<string:service_id>", "post", (400, 401, 404, 413, 415, 422, 500), operationId="cdsCall",
                   security=SECURED,
                   parameters=[{"in": "path", "name": "service_id", "required": True,
                                "schema": {"type": "string", "enum": [SERVICE_ID]}}],
                   requestBody={"required": True, "content": json_content(HookRequestSchema)},
                   responses={"200": response("One card per abnormal or significantly changed result, or panel "
                                               "finding.", CardsSchema)})
    def call(service_id: str) -> ResponseReturnValue:
        """Call the service: the newest result of each analyte from the prefetch, compared with the older ones, as cards."""
        if service_id != SERVICE_ID:
            raise ApiProblem(404, f"no CDS service {service_id[:60]!r}; see GET /cds-services")
        return json_response(_answer(read_json(settings.max_body_bytes), kb, settings))

    return Door(bp, doc, refine_contract=lambda contract: refine_contract(contract, kb))


def _answer(body: Any, kb: Knowledge, settings: Settings) -> dict[str, Any]:
    """The cards for a hook request, or ApiProblem (422) locating what is wrong with it."""
    if not isinstance(body, dict):
        raise ApiProblem(422, "expected a CDS Hooks request object", [Problem((), "expected a JSON object")])
    try:
        request = _request_schema.load(body)
    except ValidationError as exc:
        problems = flatten_messages(exc.messages)
        raise ApiProblem(422, f"{len(problems)} problem(s) in the request", problems) from None
    reports: list[PanelReport] = []
    try:
        answer = cards(request, kb, settings.max_fhir_resources, reports=reports)
    except PrefetchMissing as exc:
        raise ApiProblem(422, f"prefetch needed and not sent: {', '.join(exc.keys)}",
                         [Problem(("prefetch", k), "needed; send the resource, or null when there is none")
                          for k in exc.keys], title=PREFETCH_MISSING_TITLE) from None
    except PrefetchInvalid as exc:
        raise ApiProblem(422, f"{len(exc.problems)} problem(s) in the prefetch", exc.problems,
                         title=FHIR_STRUCTURE_TITLE) from None
    metrics.observe_reports(reports)
    return answer


FHIR_STRUCTURE_TITLE = "Invalid FHIR in prefetch"
PREFETCH_MISSING_TITLE = "Prefetch needed"



def refine_contract(contract: dict[str, Any], kb: Knowledge) -> dict[str, Any]:
    """Name the prefetch keys in the contract, each with the FHIR resources it may hold (the same
    components as POST /fhir/$interpret), the needed ones required."""
    schema = contract["components"]["schemas"]["HookRequest"]
    needed = ("patient", *analyte_keys(kb))
    properties = {key: {"oneOf": [{"type": "null"}, *(_kind_schema(k) for k in kinds)]}
                  for key, kinds in prefetch_kinds(kb).items()}
    schema["properties"]["prefetch"] = {**schema["properties"]["prefetch"], "required": list(needed),
                                        "properties": properties,
                                        "propertyNames": {"maxLength": MAX_PREFETCH_KEY}}
    schema["required"] = sorted({*schema["required"], "prefetch"})
    return contract


def _kind_schema(kind: str) -> dict[str, Any]:
    if kind in ("Bundle", "Observation"):
        return {"$ref": f"#/components/schemas/Fhir{kind}"}
    return {"type": "object", "required": ["resourceType"], "properties": {"resourceType": {"const": kind}},
            "description": f"An R4 {kind}."}
