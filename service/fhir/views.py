"""POST /fhir/$interpret: FHIR R4 in, a FHIR R4 collection Bundle out; errors as OperationOutcome."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response
from flask.typing import ResponseReturnValue

from ..config import Settings
from ..core.knowledge import Knowledge
from ..core.report import PanelReport
from ..http.body import read_json
from ..http.contract import SECURED, ApiDoc
from ..http.door import Door
from ..http.problems import ApiProblem
from ..http.writer import json_response
from ..ops import metrics
from .envelope import component_schemas
from .interpret import interpret_fhir
from .outcome import FHIR_JSON, FhirError, Issue, outcome

ACCEPTED = (FHIR_JSON, "application/json")
ISSUE_CODES = {400: "structure", 401: "security", 404: "not-found", 405: "not-supported", 413: "too-costly",
               415: "not-supported", 422: "invalid", 500: "exception"}

REQUEST_SCHEMA = {"$ref": "#/components/schemas/FhirRequest"}  # components from service/fhir/envelope.py
BUNDLE_SCHEMA = {"type": "object", "required": ["resourceType", "type", "entry"],
                 "properties": {"resourceType": {"const": "Bundle"}, "type": {"const": "collection"},
                                "entry": {"type": "array", "items": {"type": "object", "required": ["resource"]}}},
                 "description": "Each interpreted Observation as it came in, with `interpretation`, `referenceRange` "
                                "and `note`; a DetectedIssue per panel note; an OperationOutcome naming every "
                                "Observation that was not interpreted and why."}
OUTCOME_SCHEMA = {"type": "object", "required": ["resourceType", "issue"],
                  "properties": {"resourceType": {"const": "OperationOutcome"},
                                 "issue": {"type": "array", "minItems": 1, "items": {
                                     "type": "object", "required": ["severity", "code"],
                                     "properties": {"severity": {"enum": ["fatal", "error", "warning", "information"]},
                                                    "code": {"type": "string"},
                                                    "diagnostics": {"type": "string"},
                                                    "expression": {"type": "array", "items": {"type": "string"}}}}}}}


def outcome_response(status: int, issues: tuple[Issue, ...] | list[Issue], headers: dict[str, str] | None = None) -> Response:
    return json_response(outcome(issues), status, FHIR_JSON, headers)


def problem_as_outcome(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    """An HTTP-level error (404, 405, 413, 415, ...) on a FHIR path, as FHIR clients expect it."""
    severity = "fatal" if status >= 500 else "error"
    return outcome_response(status, [Issue(severity, ISSUE_CODES.get(status, "processing"), detail)], headers)


def refine_contract(contract: dict[str, Any], max_resources: int) -> dict[str, Any]:
    """Add the FHIR request components (the same schemas the service checks requests against)."""
    contract["components"]["schemas"].update(component_schemas(max_resources))
    return contract


def _outcome_doc(description: str) -> dict[str, Any]:
    return {"description": description, "content": {FHIR_JSON: {"schema": OUTCOME_SCHEMA}}}


RESPONSES = {
    "200": {"description": "A collection Bundle.", "content": {FHIR_JSON: {"schema": BUNDLE_SCHEMA}}},
    "400": _outcome_doc("Malformed request: empty body, invalid JSON, not an object."),
    "401": _outcome_doc("Missing or wrong API key."),
    "413": _outcome_doc("Request body larger than the configured limit."),
    "415": _outcome_doc("Not application/fhir+json or application/json."),
    "422": _outcome_doc("The request breaks its contract (FhirRequest: another resource type, a missing or invalid "
                        "status or code, an unsupported Bundle type, too many resources); each issue locates its "
                        "element by FHIRPath. A resource the R4 models refuse otherwise is not read, and the 200 "
                        "answer's OperationOutcome says which and why."),
    "500": _outcome_doc("Unexpected server error (never expected; no detail is revealed)."),
}


def make_door(kb: Knowledge, settings: Settings) -> Door:
    bp = Blueprint("fhir", __name__, url_prefix="/fhir")
    doc = ApiDoc("fhir", "FHIR R4: interpret the Observations EHRs send.", "/fhir")

    @bp.post("/$interpret")
    @doc.operation("/$interpret", "post", operationId="interpretFhir", security=SECURED, requestBody={
        "required": True, "content": {FHIR_JSON: {"schema": REQUEST_SCHEMA}, "application/json": {"schema": REQUEST_SCHEMA}},
    }, responses=RESPONSES)
    def interpret() -> ResponseReturnValue:
        """Interpret FHIR R4 Observations.

        Takes an Observation, a DiagnosticReport with contained Observations, or a Bundle (collection,
        batch, transaction, searchset), maps each Observation by LOINC code and UCUM unit, reads age and
        sex from a Patient and B12 injections and medications from MedicationAdministration and
        MedicationStatement resources, and returns the enriched Observations in a collection Bundle.
        The subject's earlier Observations of an analyte are the history of its newest one, which gains
        `U` or `D` for a significant change.
        """
        try:
            body = read_json(settings.max_body_bytes, accept=ACCEPTED)
            reports: list[PanelReport] = []
            bundle = interpret_fhir(body, kb, settings.max_fhir_resources, reports=reports)
        except ApiProblem as exc:
            return problem_as_outcome(exc.status, exc.detail)
        except FhirError as exc:
            return outcome_response(exc.status, exc.issues)
        metrics.observe_reports(reports)
        return json_response(bundle, 200, FHIR_JSON)

    return Door(bp, doc, problem_as_outcome,
                lambda contract: refine_contract(contract, settings.max_fhir_resources))
