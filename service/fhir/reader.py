"""Read a FHIR R4 request: check its contract, then find every resource and where it sits.

The request's contract (service/fhir/envelope.py: resource types, required elements, codes) is
checked whole; fhir.resources (R4B models) then checks each resource's structure on its own, and this
module keeps working on the raw dicts, which are echoed back as they came.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from .envelope import request_issues
from .outcome import FhirError, Issue, fhirpath
CONTEXT_TYPES = ("Patient", "MedicationAdministration", "MedicationStatement", "Medication")
MAX_ISSUES = 50


@dataclass
class Found:
    """One resource of the request, with its FHIRPath and what it inherits from a panel or report."""

    resource: dict[str, Any]
    path: str
    container: Found | None = None
    inherited_effective: str | None = None
    inherited_subject: str | None = None

    @property
    def type(self) -> str:
        return str(self.resource.get("resourceType"))

    @property
    def effective(self) -> str | None:
        own = self.resource.get("effectiveDateTime") or (self.resource.get("effectivePeriod") or {}).get("start")
        return own or self.inherited_effective

    @property
    def subject(self) -> str | None:
        return (self.resource.get("subject") or {}).get("reference") or self.inherited_subject


@dataclass
class Read:
    resources: list[Found] = field(default_factory=list)
    index: dict[str, Found] = field(default_factory=dict)  # "Type/id", fullUrl, or "<container path>#id"
    issues: list[Issue] = field(default_factory=list)

    def of_type(self, *types: str) -> list[Found]:
        return [f for f in self.resources if f.type in types]

    def resolve(self, reference: str | None, near: Found) -> Found | None:
        if not reference:
            return None
        if reference.startswith("#"):
            holder = near.container or near
            return self.index.get(holder.path + reference)
        return self.index.get(reference) or self.index.get("/".join(reference.split("/")[-2:]))


def entry_index(path: str | None) -> int | None:
    """Bundle.entry[3].resource... -> 3 (None for a path outside Bundle.entry)."""
    if not path or not path.startswith("Bundle.entry["):
        return None
    return int(path[len("Bundle.entry["):path.index("]")])


def _count_resources(body: Any, max_resources: int, root: str) -> None:
    """Resources anywhere in the request (entries, contained): bounded before any model runs. And every
    number finite (NaN and Infinity are not JSON; the body reader parses them to say where they are)."""
    count, stack = 0, [body]
    while stack:
        value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            raise FhirError(422, [Issue("error", "value", "numbers must be finite (NaN and Infinity are not JSON)", root)])
        if isinstance(value, dict):
            count += "resourceType" in value
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        if count > max_resources:
            raise FhirError(422, [Issue("error", "too-costly", f"at most {max_resources} resources per request", root)])


def _structure_issues(resource: dict[str, Any], path: str) -> list[Issue]:
    """What the R4B models say is wrong with one resource's structure (empty: it is R4)."""
    try:
        get_fhir_model_class(str(resource["resourceType"])).model_validate(resource)
    except ValidationError as exc:
        return [Issue("error", "required" if "missing" in e["type"] else "structure",
                      f"not read: {str(e['msg'])[:300]}", fhirpath(e["loc"], path)) for e in exc.errors()[:MAX_ISSUES]]
    except (ValueError, TypeError, KeyError) as exc:  # fhir.resources raising outside pydantic's errors
        return [Issue("error", "structure", f"not read: not a valid FHIR R4 {resource['resourceType']}: "
                                            f"{type(exc).__name__}", path)]
    return []


def read_request(body: Any, max_resources: int) -> Read:
    """Every resource of the request that is FHIR R4, indexed for references. FhirError (422) when the
    request breaks its contract (service/fhir/envelope.py); a resource the R4 models refuse is left out,
    with an issue saying why, so that it never fails the others."""
    if not isinstance(body, dict):
        raise FhirError(400, [Issue("error", "structure", "expected a FHIR resource (a JSON object)")])
    root = str(body.get("resourceType"))
    _count_resources(body, max_resources, root)
    problems = request_issues(body, max_resources)
    if problems:
        raise FhirError(422, problems[:MAX_ISSUES])
    out = Read()
    if root == "Bundle":
        for i, entry in enumerate(body.get("entry") or []):
            res, path = entry.get("resource"), f"Bundle.entry[{i}].resource"
            if isinstance(res, dict):
                _add_if_r4(out, res, path, entry.get("fullUrl"))
    else:
        _add_if_r4(out, body, root, None)
    _inherit(out)
    return out


def _add_if_r4(out: Read, res: dict[str, Any], path: str, full_url: str | None) -> None:
    issues = _structure_issues(res, path)
    if issues:
        out.issues.extend(issues)
        return
    found = _add(out, res, path)
    if full_url:
        out.index[full_url] = found


def _add(out: Read, res: dict[str, Any], path: str, container: Found | None = None) -> Found:
    found = Found(res, path, container)
    out.resources.append(found)
    if res.get("id"):
        key = (container.path + "#" + res["id"]) if container else f"{res['resourceType']}/{res['id']}"
        out.index.setdefault(key, found)
    for j, inner in enumerate(res.get("contained") or []):
        if isinstance(inner, dict):
            _add(out, inner, f"{path}.contained[{j}]", found)
    return found


def _inherit(out: Read) -> None:
    """Members of a panel Observation or results of a DiagnosticReport take its time and subject when
    they carry none (the FHIR R4 General Health Panel example times only its panels)."""
    links: list[tuple[Found, Found]] = []
    for parent in out.of_type("Observation", "DiagnosticReport"):
        for ref in parent.resource.get("hasMember") or parent.resource.get("result") or []:
            reference = (ref or {}).get("reference")
            child = out.resolve(reference, parent)
            if child is None and reference:
                out.issues.append(Issue("warning", "not-found", f"{reference:.80} is referenced but not in the "
                                        "request, so it was not interpreted", parent.path))
            elif child is not None and child.type == "Observation":
                links.append((parent, child))
    for _ in range(2):  # twice: a panel may first inherit from its report what its members then inherit
        for parent, child in links:
            child.inherited_effective = child.inherited_effective or parent.effective
            child.inherited_subject = child.inherited_subject or parent.subject
