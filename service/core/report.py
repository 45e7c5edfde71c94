"""The interpretation report: what the core returns and every front door renders.

The types are NamedTuples: immutable like frozen dataclasses, but several times cheaper to build,
which matters at thousands of results per request (bench/ measures it).
"""
from __future__ import annotations

from typing import Any, NamedTuple


def tidy(x: float | None) -> float | None:
    """Round for display (classification always uses the unrounded value)."""
    return None if x is None else float(f"{x:.6g}")


def is_exact(comparator: str | None, band: str) -> bool:
    """A plausible, uncensored measurement: the only kind a derived value or `has_result` may use."""
    return comparator is None and band not in ("implausible", "indeterminate")


class Note(NamedTuple):
    id: str
    severity: str
    text: str
    sources: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "severity": self.severity, "text": self.text, "sources": list(self.sources)}

    def as_text(self) -> str:
        """The note as one line of plain text with its severity and sources, for doors that carry
        free text only (a FHIR Annotation, an HL7 v2 NTE)."""
        return f"[{self.severity}] {self.text} Sources: {'; '.join(self.sources)}."


class RangeUsed(NamedTuple):
    low: float | None  # canonical unit
    high: float | None
    canonical_unit: str
    input_low: float | None  # the caller's unit
    input_high: float | None
    input_unit: str
    origin: str  # default | partition | laboratory
    source: str
    critical_low: float | None = None  # canonical; the critical limits applied (not in the JSON report)
    critical_high: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "low": tidy(self.input_low), "high": tidy(self.input_high), "unit": self.input_unit,
            "canonical": {"low": tidy(self.low), "high": tidy(self.high), "unit": self.canonical_unit},
            "origin": self.origin, "source": self.source,
        }


class ResultReport(NamedTuple):
    id: str
    analyte: str
    loinc: str
    value: float | int | str
    comparator: str | None
    unit: str
    normalized_value: float
    canonical_unit: str
    band: str
    flag: str | None
    critical: bool
    reference_range: RangeUsed
    notes: tuple[Note, ...]

    @property
    def exact(self) -> bool:
        return is_exact(self.comparator, self.band)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "analyte": self.analyte, "loinc": self.loinc,
            "value": self.value, "comparator": self.comparator, "unit": self.unit,
            "normalized": {"value": tidy(self.normalized_value), "unit": self.canonical_unit,
                           "comparator": self.comparator},
            "band": self.band, "flag": self.flag, "critical": self.critical,
            "reference_range": self.reference_range.to_dict(),
            "notes": [n.to_dict() for n in self.notes],
        }


class PanelReport(NamedTuple):
    results: tuple[ResultReport, ...]
    notes: tuple[Note, ...]
    knowledge_version: str
    disclaimer: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "results": [r.to_dict() for r in self.results],
            "notes": [n.to_dict() for n in self.notes],
            "knowledge_version": self.knowledge_version,
            "disclaimer": self.disclaimer,
        }
