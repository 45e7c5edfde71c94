"""Clinical context from the same request: age and sex from a Patient, B12 injections and medication
classes from MedicationAdministration and MedicationStatement resources."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..core.knowledge import Knowledge
from ..core.medications import B12
from ..core.model import Context, Patient
from .outcome import Issue
from .reader import Found, Read
from .times import age_years, instant

IGNORED_STATUS = {"entered-in-error", "not-done", "not-taken", "cancelled", "stopped", "unknown"}


@dataclass
class Subject:
    patient: Patient
    injections: list[datetime] = field(default_factory=list)
    therapy_starts: list[datetime] = field(default_factory=list)  # B12 MedicationStatement periods' starts
    other: list[tuple[str, datetime | None]] = field(default_factory=list)  # (class, start)
    issues: list[Issue] = field(default_factory=list)

    def context(self, collected: datetime | None) -> Context:
        """The context as of one collection time: only what happened before it counts."""
        before = [t for t in self.injections if collected is None or t <= collected]
        started = [t for t in self.therapy_starts if collected is None or t <= collected]
        meds = {c for c, start in self.other if start is None or collected is None or start <= collected}
        return Context(b12_injection_at=max(before) if before else None,
                       b12_therapy_started_at=max(started) if started else None, medications=frozenset(meds))


def patient_for(read: Read, subject: str | None, near: Found, at: datetime | None,
                kb: Knowledge) -> tuple[Patient, Found | None]:
    """The Patient the Observation names, or the request's only Patient when it names none."""
    found = read.resolve(subject, near) if subject else None
    if found is None and subject is None:
        patients = read.of_type("Patient")
        found = patients[0] if len(patients) == 1 else None
    if found is None or found.type != "Patient":
        return Patient(), None
    gender = found.resource.get("gender")
    return Patient(age_years(found.resource.get("birthDate"), at), gender if gender in kb.vocabulary.ids("sex") else None), found


def _belongs(res: Found, subject: str | None, read: Read) -> bool:
    ref = (res.resource.get("subject") or res.resource.get("patient") or {}).get("reference")
    if ref is None or subject is None:
        return True
    if ref == subject:
        return True
    mine, theirs = read.resolve(ref, res), read.resolve(subject, res)
    return mine is not None and mine is theirs


def _concept(res: Found, read: Read) -> tuple[list[dict[str, Any]], list[str]]:
    concept = res.resource.get("medicationCodeableConcept")
    if concept is None:
        med = read.resolve((res.resource.get("medicationReference") or {}).get("reference"), res)
        concept = (med.resource.get("code") if med is not None else None) or {}
    codings = concept.get("coding") or []
    return codings, [concept.get("text") or "", *(c.get("display") or "" for c in codings)]


def _when(res: Found) -> tuple[datetime | None, str | None]:
    r = res.resource
    period = r.get("effectivePeriod") or {}
    return instant(r.get("effectiveDateTime") or period.get("end") or period.get("start") or r.get("dateAsserted"))


def _note_therapy_start(res: Found, out: Subject) -> None:
    """A B12 MedicationStatement's period start is when replacement began (the first days of treating
    a deficiency are when potassium may fall); an administration says only when one dose was given."""
    if res.type != "MedicationStatement":
        return
    start, _ = instant((res.resource.get("effectivePeriod") or {}).get("start"))
    if start is not None:
        out.therapy_starts.append(start)


def _routes(res: Found) -> list[dict[str, Any]]:
    dosage = res.resource.get("dosage")
    dosages = dosage if isinstance(dosage, list) else [dosage] if dosage else []
    return [c for d in dosages for c in ((d or {}).get("route") or {}).get("coding") or []]


def medications_for(read: Read, subject: str | None, patient: Patient, kb: Knowledge) -> Subject:
    out = Subject(patient)
    for res in read.of_type("MedicationAdministration", "MedicationStatement"):
        if res.resource.get("status") in IGNORED_STATUS or not _belongs(res, subject, read):
            continue
        codings, texts = _concept(res, read)
        ingredient = kb.medications.recognise(codings, texts)
        if ingredient is None:
            out.issues.append(Issue("information", "not-supported",
                                    "medication not recognised as one the notes use; not part of the context", res.path))
            continue
        moment, remark = _when(res)
        if ingredient.drug_class == B12:
            _note_therapy_start(res, out)
        if ingredient.drug_class != B12:
            out.other.append((ingredient.drug_class, moment))
            continue
        route = kb.medications.route_kind(_routes(res))
        if route == "enteral":
            out.other.append(("b12_supplement", moment))
        elif moment is None:
            out.issues.append(Issue("warning", "incomplete", f"{ingredient.name}: no usable time"
                                    + (f" ({remark})" if remark else "") + "; not used", res.path))
        else:
            out.injections.append(moment)
            if route is None:
                out.issues.append(Issue("information", "informational",
                                        f"{ingredient.name} without a route: read as an injection", res.path))
    return out
