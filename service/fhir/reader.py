"""Read a FHIR R4 request: check its structure, then find every resource and where it sits.

fhir.resources (R4B models) checks the structure; it does not check codes or invariants, and it
raises on unknown resource types inside a Bundle, so this module walks the raw JSON first (size,
numbers, resource types) and keeps working on the raw dicts, which are echoed back as they came.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterator

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from .outcome import FhirError, Issue, fhirpath

TOP_LEVEL = ("Observation", "Bundle", "DiagnosticReport")
BUNDLE_TYPES = ("collection", "batch", "transaction", "searchset")
CONTEXT_TYPES = ("Patient", "MedicationAdministration", "MedicationStatement", "Medication")
MAX_ISSUES = 50


@dataclass
class Found:
    """One resource of the request, with its FHIRPath and what it inherits from a panel or report."""

    resource: dict[str, Any]
    path: str
    container: "Found | None" = None
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


def _walk(value: Any, loc: tuple) -> Iterator[tuple[tuple, Any]]:
    yield loc, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, loc + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, loc + (i,))


def _precheck(body: Any, max_resources: int) -> str:
    if not isinstance(body, dict):
        raise FhirError(400, [Issue("error", "structure", "expected a FHIR resource (a JSON object)")])
    kind = body.get("resourceType")
    if kind not in TOP_LEVEL:
        raise FhirError(422, [Issue("error", "not-supported",
                                    f"send an Observation, a Bundle or a DiagnosticReport, not {str(kind)[:40]!r}",
                                    "resourceType")])
    root = str(kind)
    count, problems = 0, []
    for loc, value in _walk(body, ()):
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(Issue("error", "value", "numbers must be finite", fhirpath(loc, root)))
        if isinstance(value, dict) and "resourceType" in value:
            count += 1
            try:
                get_fhir_model_class(str(value["resourceType"]))
            except (ValueError, KeyError, TypeError):
                problems.append(Issue("error", "structure", f"unknown resource type {str(value['resourceType'])[:40]!r}",
                                      fhirpath(loc + ("resourceType",), root)))
        if count > max_resources:
            raise FhirError(422, [Issue("error", "too-costly",
                                        f"at most {max_resources} resources per request", root)])
    if problems:
        raise FhirError(422, problems[:MAX_ISSUES])
    if root == "Bundle" and body.get("type") not in BUNDLE_TYPES:
        raise FhirError(422, [Issue("error", "not-supported",
                                    f"Bundle.type must be one of {', '.join(BUNDLE_TYPES)}", "Bundle.type")])
    return root


def _validate(body: dict[str, Any], root: str) -> None:
    """Structure, cardinality and primitive formats, as the R4B models check them."""
    try:
        get_fhir_model_class(root).model_validate(body)
    except ValidationError as exc:
        issues = [Issue("error", "required" if "missing" in e["type"] else "structure",
                        str(e["msg"])[:300], fhirpath(e["loc"], root)) for e in exc.errors()[:MAX_ISSUES]]
        raise FhirError(422, issues) from None
    except (ValueError, TypeError, KeyError) as exc:  # fhir.resources raising outside pydantic's errors
        raise FhirError(422, [Issue("error", "structure", f"not a valid FHIR R4 {root}: {type(exc).__name__}",
                                    root)]) from None


def read_request(body: Any, max_resources: int) -> Read:
    """Every resource of the request, indexed for references; FhirError when it cannot be read."""
    root = _precheck(body, max_resources)
    _validate(body, root)
    out = Read()
    if root == "Bundle":
        for i, entry in enumerate(body.get("entry") or []):
            res = entry.get("resource")
            if isinstance(res, dict):
                found = _add(out, res, f"Bundle.entry[{i}].resource")
                if entry.get("fullUrl"):
                    out.index[entry["fullUrl"]] = found
    else:
        _add(out, body, root)
    _inherit(out)
    return out


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
