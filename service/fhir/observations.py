"""One FHIR Observation -> the core's ResultInput, or the reason it is not interpreted.

An Observation that cannot be interpreted (other analyte, no value, status, unit not accepted) is
reported in the OperationOutcome and never fails the others. The core's own per-result check
(result_problems) decides what is acceptable, so no rule is repeated here.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from ..core.interpret import result_problems
from ..core.knowledge import Knowledge
from ..core.model import LabRange, ResultInput
from .outcome import Issue
from .reader import Found
from .times import instant

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
RANGE_MEANING = "http://terminology.hl7.org/CodeSystem/referencerange-meaning"
NOT_INTERPRETED = {"entered-in-error": "entered in error", "cancelled": "cancelled", "registered": "registered, no result yet"}


@dataclass(frozen=True)
class Mapped:
    found: Found
    result: ResultInput | None  # None: not interpreted, see `issues`
    collected: datetime | None
    issues: tuple[Issue, ...]
    lab_range_used: bool = False


def _loinc(obs: dict[str, Any], kb: Knowledge) -> tuple[str | None, list[str]]:
    codes = [c.get("code") for c in (obs.get("code") or {}).get("coding") or []
             if c.get("system") == LOINC and c.get("code")]
    return next((c for c in codes if c in kb.by_loinc), None), codes


def _unit(q: dict[str, Any]) -> str | None:
    """The UCUM code when the system says UCUM, else the human unit text, which real systems often send alone."""
    if q.get("system") == UCUM and q.get("code"):
        return str(q["code"])
    return q.get("unit") or q.get("code")


def _lab_range(obs: dict[str, Any]) -> LabRange | None:
    """The laboratory's normal range: the first without a type, or typed `normal`, with a number."""
    for rng in obs.get("referenceRange") or []:
        codes = {c.get("code") for c in (rng.get("type") or {}).get("coding") or [] if c.get("system") == RANGE_MEANING}
        if rng.get("type") and "normal" not in codes:
            continue
        low, high = rng.get("low") or {}, rng.get("high") or {}
        if low.get("value") is None and high.get("value") is None:
            continue
        unit = _unit(low) if low.get("value") is not None else _unit(high)
        return LabRange(low.get("value"), high.get("value"), unit, rng.get("text"))
    return None


def map_observation(found: Found, kb: Knowledge) -> Mapped:
    obs, path = found.resource, found.path
    loinc, codes = _loinc(obs, kb)

    def skip(code: str, why: str, where: str = path, severity: str = "information") -> Mapped:
        return Mapped(found, None, None, (Issue(severity, code, f"not interpreted: {why}", where),))

    if loinc is None:
        what = f"LOINC {', '.join(codes[:5])}" if codes else "no LOINC code"
        return skip("not-supported", f"{what} is not an analyte this service interprets", f"{path}.code")
    analyte = kb.by_loinc[loinc].id
    if obs.get("hasMember") and "valueQuantity" not in obs:
        return skip("informational", f"{analyte} panel; its members are read one by one")
    status = obs.get("status")
    if status in NOT_INTERPRETED:
        return skip("business-rule", f"status is {NOT_INTERPRETED[status]}", f"{path}.status", "warning")
    q = obs.get("valueQuantity")
    if not isinstance(q, dict) or "value" not in q:
        why = "no valueQuantity"
        if obs.get("dataAbsentReason"):
            reason = obs["dataAbsentReason"].get("text") or next(
                (c.get("code") for c in obs["dataAbsentReason"].get("coding") or []), "given")
            why = f"no value (dataAbsentReason: {str(reason)[:60]})"
        elif any(k.startswith("value") for k in obs):
            why = "the value is not a Quantity"
        return skip("incomplete", why, f"{path}.value", "warning")
    value = q["value"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return skip("value", "valueQuantity.value must be a JSON number", f"{path}.valueQuantity.value", "warning")
    comparator = q.get("comparator")
    result = ResultInput(value=value, unit=_unit(q), code=loinc, id=path,
                         comparator=comparator if comparator is None or isinstance(comparator, str) else repr(comparator),
                         reference_range=_lab_range(obs))
    issues: list[Issue] = []
    problems = result_problems(result, kb)
    if result.reference_range is not None and problems and all(p.path[:1] == ("reference_range",) for p in problems):
        # Only the laboratory's range is at fault (its problems never depend on the rest): without it the
        # result is acceptable as it is.
        issues.append(Issue("warning", "value", "the laboratory referenceRange could not be used ("
                            + "; ".join(p.message for p in problems)[:200] + "); the default interval applies",
                            f"{path}.referenceRange"))
        result = replace(result, reference_range=None)
        problems = []
    if problems:
        where = {"unit": f"{path}.valueQuantity", "value": f"{path}.valueQuantity.value",
                 "comparator": f"{path}.valueQuantity.comparator"}
        return Mapped(found, None, None, tuple(
            Issue("warning", "value" if p.path[:1] == ("value",) else "not-supported",
                  f"not interpreted: {'comparator ' if p.path[:1] == ('comparator',) else ''}{p.message[:200]}",
                  where.get(str(p.path[0]) if p.path else "", path))
            for p in problems))
    collected, remark = instant(found.effective)
    if remark:
        issues.append(Issue("information", "informational", f"effective time {remark}", f"{path}.effective"))
    return Mapped(found, result, collected, tuple(issues), result.reference_range is not None)
