"""What a FHIR request must be for the service to read it: the resource types accepted and the R4
elements each requires, as JSON Schema. The same schemas are the contract (openapi.yaml, for
`POST /fhir/$interpret` and the CDS Hooks prefetch) and the check the service runs (jsonschema), so
the two cannot disagree: a request that breaks them gets a 422 locating the element by FHIRPath.

Everything else about a resource (its other R4 elements and their datatypes) is checked by the
fhir.resources R4B models, resource by resource (service/fhir/reader.py): a resource they refuse is
not read, and the OperationOutcome of the 200 answer says which and why, as for an Observation of
another analyte. So one malformed resource never fails the others.
"""
from __future__ import annotations

import functools
from typing import Any

from fhir.resources.R4B import fhirtypes, get_fhir_model_class
from fhir.resources.R4B.resource import Resource as R4BResource
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from .outcome import Issue, fhirpath

# R4 value sets with a required binding (http://hl7.org/fhir/R4/valueset-observation-status.html and
# valueset-diagnostic-report-status.html); the R4B models do not check codes.
OBSERVATION_STATUSES = ("registered", "preliminary", "final", "amended", "corrected", "cancelled",
                        "entered-in-error", "unknown")
REPORT_STATUSES = ("registered", "partial", "preliminary", "final", "amended", "corrected", "appended",
                   "cancelled", "entered-in-error", "unknown")
BUNDLE_TYPES = ("collection", "batch", "transaction", "searchset")
TOP_LEVEL = ("Observation", "DiagnosticReport", "Bundle")
REF = "#/components/schemas/"


@functools.lru_cache(maxsize=1)
def resource_types() -> tuple[str, ...]:
    """Every concrete R4B resource type, from the models themselves."""
    names = []
    for attr in dir(fhirtypes):
        if not attr.endswith("Type") or not attr[:1].isupper():
            continue
        try:
            model = get_fhir_model_class(attr[:-4])
        except ValueError:
            continue
        if isinstance(model, type) and issubclass(model, R4BResource) and attr[:-4] not in ("Resource", "DomainResource"):
            names.append(attr[:-4])
    return tuple(sorted(names))


def _coded(kind: str, statuses: tuple[str, ...], description: str) -> dict[str, Any]:
    return {
        "type": "object", "required": ["resourceType", "status", "code"], "description": description,
        "properties": {
            "resourceType": {"const": kind},
            "status": {"enum": list(statuses), "description": f"{kind}.status (R4 required binding)."},
            "code": {"type": "object", "description": f"{kind}.code, a CodeableConcept (LOINC in coding[])."},
            "contained": {"type": "array", "items": {"$ref": REF + "FhirResource"}},
        },
    }


def component_schemas(max_resources: int) -> dict[str, dict[str, Any]]:
    """The OpenAPI components: each resource type accepted, with the elements it requires."""
    others = [t for t in resource_types() if t not in ("Observation", "DiagnosticReport", "Bundle")]
    return {
        "FhirObservation": _coded("Observation", OBSERVATION_STATUSES,
                                  "An R4 Observation: status and code required; its other R4 elements are checked "
                                  "by the R4 models, and an Observation they refuse is named in the OperationOutcome."),
        "FhirDiagnosticReport": _coded("DiagnosticReport", REPORT_STATUSES,
                                       "An R4 DiagnosticReport: status and code required; its results are referenced "
                                       "Observations (in the Bundle, or contained)."),
        "FhirOtherResource": {
            "type": "object", "required": ["resourceType"],
            "description": "Any other R4 resource (a Patient, a MedicationAdministration, ...), read for what the "
                           "notes use and for references.",
            "properties": {"resourceType": {"enum": others}}},
        "FhirResource": {"oneOf": [{"$ref": REF + n} for n in ("FhirObservation", "FhirDiagnosticReport",
                                                                "FhirOtherResource")],
                         "discriminator": {"propertyName": "resourceType"}},
        "FhirBundle": {
            "type": "object", "required": ["resourceType", "type"],
            "description": "An R4 Bundle of type collection, batch, transaction or searchset.",
            "properties": {
                "resourceType": {"const": "Bundle"}, "type": {"enum": list(BUNDLE_TYPES)},
                "entry": {"type": "array", "maxItems": max_resources, "items": {
                    "type": "object",
                    "properties": {"fullUrl": {"type": "string"}, "resource": {"$ref": REF + "FhirResource"}}}}}},
        "FhirRequest": {
            "description": "An Observation, a DiagnosticReport (with contained Observations), or a Bundle of type "
                           f"{', '.join(BUNDLE_TYPES)}; at most {max_resources} resources in all.",
            "oneOf": [{"$ref": REF + n} for n in ("FhirObservation", "FhirDiagnosticReport", "FhirBundle")],
            "discriminator": {"propertyName": "resourceType"}},
    }


DOCUMENT = "urn:labinterp:fhir-envelope"


@functools.lru_cache(maxsize=8)
def _validators(max_resources: int) -> dict[str, Draft202012Validator]:
    """One validator per component; the components' own "#/components/schemas/X" references resolve
    inside one registered document, as they do inside openapi.yaml."""
    document = {"components": {"schemas": component_schemas(max_resources)}}
    registry = Registry().with_resource(DOCUMENT, Resource.from_contents(document, default_specification=DRAFT202012))
    return {name: Draft202012Validator({"$ref": f"{DOCUMENT}#/components/schemas/{name}"}, registry=registry)
            for name in document["components"]["schemas"]}


def component_for(resource: Any) -> str | None:
    """Which component a resource must satisfy, by its resourceType (the discriminator)."""
    kind = resource.get("resourceType") if isinstance(resource, dict) else None
    if kind == "Observation":
        return "FhirObservation"
    if kind == "DiagnosticReport":
        return "FhirDiagnosticReport"
    if kind == "Bundle":
        return "FhirBundle"
    return "FhirOtherResource"


def _path(at: tuple, root: str) -> str:
    return fhirpath(at, root).lstrip(".")


def check(value: Any, component: str, root: str, max_resources: int, at: tuple = ()) -> list[Issue]:
    """Every way `value` breaks one component, located by FHIRPath below `root`."""
    if component in ("FhirRequest", "FhirResource"):
        if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
            return [Issue("error", "structure", "expected a FHIR resource with a resourceType", _path(at, root))]
        allowed = TOP_LEVEL if component == "FhirRequest" else resource_types()
        if value["resourceType"] not in allowed:
            return [Issue("error", "not-supported",
                          f"resourceType must be one of {', '.join(allowed[:5])}{'...' if len(allowed) > 5 else ''}, "
                          f"not {value['resourceType'][:40]!r}", _path(at + ("resourceType",), root))]
        component = component_for(value) or component
    validator = _validators(max_resources)[component]
    out = []
    for error in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path)):
        where = at + tuple(error.absolute_path)
        if error.validator == "oneOf":  # a nested resource: say what is wrong with it, by its own type
            out += check(error.instance, "FhirResource", root, max_resources, where)
            continue
        if error.validator == "required":  # name the missing element itself, as FHIRPath
            out += [Issue("error", "required", f"{name} is required", _path(where + (name,), root))
                    for name in error.validator_value if name not in error.instance]
            continue
        code = "value" if error.validator in ("enum", "const") else "structure"
        out.append(Issue("error", code, error.message[:300], _path(where, root)))
    return out


def request_issues(body: Any, max_resources: int) -> list[Issue]:
    """What is wrong with a whole `POST /fhir/$interpret` body (empty: it can be read)."""
    kind = body.get("resourceType") if isinstance(body, dict) else None
    return check(body, "FhirRequest", kind if kind in TOP_LEVEL else "", max_resources)

