"""The core's report written back into FHIR R4: each Observation enriched as it came in, panel notes
as DetectedIssue resources, and what was not interpreted in an OperationOutcome."""
from __future__ import annotations

import copy
import uuid
from typing import Any

from ..core.knowledge import Knowledge
from ..core.report import Note, ResultReport, tidy
from .observations import RANGE_MEANING, UCUM

INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
DISPLAYS = {"LL": "Critical low", "L": "Low", "N": "Normal", "H": "High", "HH": "Critical high",
            "IND": "Indeterminate"}
# A change beyond the delta-check limit since the subject's previous result (the delta's direction).
CHANGE_CODES = {"rise": ("U", "Significant change up"), "fall": ("D", "Significant change down")}
NOTE_SYSTEM = "urn:labinterp:note"
VERSION_SYSTEM = "urn:labinterp:knowledge-version"
DETECTED_SEVERITY = {"critical": "high", "warning": "moderate", "info": "low"}


def signature(kb: Knowledge) -> str:
    return f"labinterp (knowledge {kb.version})"


def _code(r: ResultReport) -> str | None:
    """The v3-ObservationInterpretation code of a result: its flag, or IND for an indeterminate one."""
    return "IND" if r.band == "indeterminate" else r.flag


def _change(r: ResultReport) -> tuple[str, str] | None:
    """U or D when the result changed significantly since the previous one (its delta), else None."""
    delta = r.delta
    if delta is None or not delta.significant:
        return None
    return CHANGE_CODES.get(delta.direction or "")


def _interpretation(r: ResultReport) -> dict[str, Any]:
    code, change = _code(r), _change(r)
    text = r.band.replace("_", " ")
    codings = [{"system": INTERPRETATION, "code": code, "display": DISPLAYS[code]}] if code else []
    if change:
        codings.append({"system": INTERPRETATION, "code": change[0], "display": change[1]})
        text += f"; {change[1].lower()}"
    concept: dict[str, Any] = {"text": text}
    if codings:
        concept["coding"] = codings
    return concept


def _quantity(value: float, ucum: str) -> dict[str, Any]:
    return {"value": tidy(value), "unit": ucum, "system": UCUM, "code": ucum}


def _our_range(r: ResultReport, kb: Knowledge) -> dict[str, Any]:
    used = r.reference_range
    unit = kb.units.lookup(used.input_unit)
    ucum = unit.ucum if unit else used.input_unit
    out: dict[str, Any] = {}
    if used.input_low is not None:
        out["low"] = _quantity(used.input_low, ucum)
    if used.input_high is not None:
        out["high"] = _quantity(used.input_high, ucum)
    out["type"] = {"coding": [{"system": RANGE_MEANING, "code": "normal", "display": "Normal Range"}]}
    sources = "; ".join(f"{c.title} ({c.reference})" for c in used.citations) or used.source
    out["text"] = f"{signature(kb)} {used.origin} interval; source: {sources}"[:1000]
    return out


def _lab_flags(obs: dict[str, Any]) -> set[str]:
    """The sending laboratory's v3 codes for where the result falls (not its change codes U and D)."""
    change = {code for code, _ in CHANGE_CODES.values()}
    return {c.get("code") for i in obs.get("interpretation") or [] for c in i.get("coding") or []
            if c.get("system") == INTERPRETATION and c.get("code") and c.get("code") not in change}


def enrich(obs: dict[str, Any], r: ResultReport, lab_range_used: bool, kb: Knowledge) -> dict[str, Any]:
    """The Observation as it came in, with our interpretation, the range applied, and our notes."""
    out = copy.deepcopy(obs)
    notes = list(out.get("note") or [])
    theirs = _lab_flags(obs)
    ours = _code(r)
    if theirs and ours not in theirs:
        notes.append({"authorString": signature(kb), "text": (
            f"The sending laboratory flagged this result {', '.join(sorted(theirs))}; labinterp classifies it "
            f"{r.band.replace('_', ' ')} ({ours or 'no flag'}) against the interval it applied.")})
    out["interpretation"] = [_interpretation(r)]
    if not lab_range_used:
        out["referenceRange"] = list(out.get("referenceRange") or []) + [_our_range(r, kb)]
    notes += [{"authorString": signature(kb), "text": n.as_text()} for n in r.notes]
    if notes:
        out["note"] = notes
    return out


def detected_issue(n: Note, subject: str | None, implicated: list[str], kb: Knowledge) -> dict[str, Any]:
    """A panel note: a finding that combines results with the clinical context."""
    res: dict[str, Any] = {
        "resourceType": "DetectedIssue", "id": f"labinterp-{uuid.uuid4().hex[:16]}", "status": "final",
        "code": {"coding": [{"system": NOTE_SYSTEM, "code": n.id}], "text": n.id},
        "severity": DETECTED_SEVERITY[n.severity],
        "author": {"display": signature(kb)},
        "detail": n.as_text(),
    }
    if subject:
        res["patient"] = {"reference": subject}
    if implicated:
        res["implicated"] = [{"reference": ref} for ref in implicated]
    url = next((s for s in n.sources if s.startswith(("https://", "http://"))), None)
    if url:
        res["reference"] = url
    return res


def new_full_url() -> str:
    return f"urn:uuid:{uuid.uuid4()}"
