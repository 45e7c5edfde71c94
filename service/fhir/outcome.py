"""OperationOutcome: how the FHIR front door reports errors (4xx) and what it did not interpret (200)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from collections.abc import Iterable

FHIR_JSON = "application/fhir+json"


@dataclass(frozen=True)
class Issue:
    severity: str  # fatal | error | warning | information
    code: str  # FHIR issue-type: invalid, structure, required, value, not-supported, too-costly, ...
    diagnostics: str
    expression: str | None = None  # FHIRPath of the element concerned

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"severity": self.severity, "code": self.code, "diagnostics": self.diagnostics}
        if self.expression:
            out["expression"] = [self.expression]
        return out


class FhirError(Exception):
    """A request the FHIR front door refuses as a whole; rendered as an OperationOutcome."""

    def __init__(self, status: int, issues: Iterable[Issue]):
        self.status = status
        self.issues = tuple(issues)
        super().__init__(f"{status}: {len(self.issues)} issue(s)")


def outcome(issues: Iterable[Issue], id_: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"resourceType": "OperationOutcome"}
    if id_:
        body["id"] = id_
    listed = [i.to_dict() for i in issues]
    body["issue"] = listed or [{"severity": "information", "code": "informational",
                                "diagnostics": "every Observation in the request was interpreted"}]
    return body


def fhirpath(loc: Iterable[Any], root: str) -> str:
    """('entry', 3, 'resource', 'valueQuantity') -> Bundle.entry[3].resource.valueQuantity."""
    out = root
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out
