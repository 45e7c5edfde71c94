"""FHIR R4 resources for the tests: the real public examples in ../shared/examples/fhir/, and our own
for what no public example has (B12, magnesium, whole-blood codes, unit text only, comparators,
medications)."""
from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from .conftest import SHARED

EXAMPLES = SHARED / "examples" / "fhir"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"


def example(name: str) -> dict[str, Any]:
    """A real public example, read from shared/; the test skips (saying why) where shared/ is absent."""
    path = EXAMPLES / name
    if not path.is_file():
        pytest.skip(f"{path} is absent: the real FHIR examples live in ../shared/examples/fhir/ beside the checkout")
    return json.loads(path.read_text(encoding="utf-8"))


def observation(id_: str, code: str, value: float | None, unit: str | None, *, ucum: bool = True,
                when: str = "2026-11-21T08:00:00Z", subject: str = "Patient/p1", status: str = "final",
                comparator: str | None = None, **extra: Any) -> dict[str, Any]:
    obs: dict[str, Any] = {"resourceType": "Observation", "id": id_, "status": status,
                           "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                                     "code": "laboratory"}]}],
                           "code": {"coding": [{"system": LOINC, "code": code}]},
                           "subject": {"reference": subject}, "effectiveDateTime": when}
    if value is not None:
        q: dict[str, Any] = {"value": value}
        if unit:
            q["unit"] = unit
            if ucum:
                q.update(system=UCUM, code=unit)
        if comparator:
            q["comparator"] = comparator
        obs["valueQuantity"] = q
    obs.update(extra)
    return obs


def patient(id_: str = "p1", gender: str = "female", birth: str = "1960-03-01") -> dict[str, Any]:
    return {"resourceType": "Patient", "id": id_, "gender": gender, "birthDate": birth}


def b12_administration(when: str = "2026-11-19T09:00:00Z", route: str | None = "78421000", subject: str = "Patient/p1",
                       resource: str = "MedicationAdministration", text: str = "Cyanocobalamin 1000 MCG/ML Injectable Solution",
                       status: str = "completed") -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": resource, "id": "b12-dose", "status": status,
                           "medicationCodeableConcept": {"text": text}, "subject": {"reference": subject},
                           "effectiveDateTime": when}
    if route:
        dosage = {"route": {"coding": [{"system": SNOMED, "code": route}]}}
        res["dosage"] = dosage if resource == "MedicationAdministration" else [dosage]
    return res


def bundle(*resources: dict[str, Any], kind: str = "collection") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind,
            "entry": [{"fullUrl": f"urn:uuid:00000000-0000-4000-8000-{i:012d}", "resource": copy.deepcopy(r)}
                      for i, r in enumerate(resources)]}
