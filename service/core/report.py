"""The interpretation report: what the core returns and every front door renders.

The types are NamedTuples: immutable like frozen dataclasses, but several times cheaper to build,
which matters at thousands of results per request (bench/ measures it).
"""
from __future__ import annotations

from typing import Any, NamedTuple


def tidy(x: float | None) -> float | None:
    """Round for display (classification always uses the unrounded value)."""
    return None if x is None else float(f"{x:.6g}")


def decimals(x: float | int | str) -> int:
    """How many decimals a value shows: a number in its display form (`tidy`), or a value's text as
    sent ("4.40" shows two). Doors that print several values together print them with the most of
    these, as laboratories do (8.6-10.0, 4.4 to 3.0)."""
    text = x if isinstance(x, str) else f"{tidy(x):g}"
    return 0 if "e" in text.lower() else len(text.partition(".")[2])


def is_exact(comparator: str | None, band: str, implausible: bool = False) -> bool:
    """A plausible, uncensored measurement: the only kind a derived value or `has_result` may use."""
    return comparator is None and not implausible and band not in ("implausible", "indeterminate")


class Citation(NamedTuple):
    """A source as people are shown it (its title) with the reference that finds it (URL or file)."""

    title: str
    reference: str
    kind: str  # laboratory_catalogue | guideline | ... | consumer (a seed document) | laboratory

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "reference": self.reference, "kind": self.kind}


class Note(NamedTuple):
    id: str
    severity: str
    text: str
    sources: tuple[str, ...]  # references (URL or seed file), as in every earlier version
    citations: tuple[Citation, ...] = ()  # the same sources with their titles

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "severity": self.severity, "text": self.text, "sources": list(self.sources),
                "citations": [c.to_dict() for c in self.citations]}

    def as_text(self) -> str:
        """The note as one line of plain text with its severity and sources, for doors that carry
        free text only (a FHIR Annotation, an HL7 v2 NTE)."""
        return f"[{self.severity}] {self.text} Sources: {self.cited()}."

    def cited(self) -> str:
        """The sources by title, each with the reference that finds it (a URL or a seed file)."""
        return "; ".join(f"{c.title} ({c.reference})" for c in self.citations) or "; ".join(self.sources)


class DerivedValue(NamedTuple):
    """A value computed from several results of the panel (the albumin-adjusted calcium), classified
    against the interval of the analyte it estimates; never a critical alarm (those stay with the
    measured values)."""

    id: str
    value: float
    unit: str  # the estimated analyte's canonical unit
    analyte: str  # what it estimates
    band: str
    flag: str | None
    inputs: tuple[str, ...]  # ids of the results it was computed from
    text: str  # as note texts quote it, e.g. "8.9 mg/dL (2.22 mmol/L)"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "value": tidy(self.value), "unit": self.unit, "analyte": self.analyte,
                "band": self.band, "flag": self.flag, "inputs": list(self.inputs)}


class RangeUsed(NamedTuple):
    low: float | None  # canonical unit
    high: float | None
    canonical_unit: str
    input_low: float | None  # the caller's unit
    input_high: float | None
    input_unit: str
    origin: str  # default | partition | laboratory
    source: str
    critical: Any = None  # the critical Limits applied, canonical unit (not in the JSON report)
    citations: tuple[Citation, ...] = ()
    text: str | None = None  # the laboratory's own wording of its interval, when that interval is used

    @property
    def critical_low(self) -> float | None:
        return None if self.critical is None else self.critical.low

    @property
    def critical_high(self) -> float | None:
        return None if self.critical is None else self.critical.high

    def to_dict(self) -> dict[str, Any]:
        return {
            "low": tidy(self.input_low), "high": tidy(self.input_high), "unit": self.input_unit,
            "canonical": {"low": tidy(self.low), "high": tidy(self.high), "unit": self.canonical_unit},
            "origin": self.origin, "source": self.source, "citations": [c.to_dict() for c in self.citations],
            "text": self.text,
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
    implausible: bool = False  # beyond the plausibility limits: verify before use (any alarm stands)
    delta: Any = None  # core.history.Delta: the change from the newest earlier result of the analyte
    trend: tuple[Any, ...] = ()  # core.history.TrendPoint: earlier results and this one, oldest first

    @property
    def exact(self) -> bool:
        return is_exact(self.comparator, self.band, self.implausible)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "analyte": self.analyte, "loinc": self.loinc,
            "value": self.value, "comparator": self.comparator, "unit": self.unit,
            "normalized": {"value": tidy(self.normalized_value), "unit": self.canonical_unit,
                           "comparator": self.comparator},
            "band": self.band, "flag": self.flag, "critical": self.critical, "implausible": self.implausible,
            "reference_range": self.reference_range.to_dict(),
            "notes": [n.to_dict() for n in self.notes],
            "delta": None if self.delta is None else self.delta.to_dict(),
            "trend": [p.to_dict() for p in self.trend],
        }


class PanelReport(NamedTuple):
    results: tuple[ResultReport, ...]
    notes: tuple[Note, ...]
    knowledge_version: str
    disclaimer: str
    derived: tuple[DerivedValue, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "results": [r.to_dict() for r in self.results],
            "notes": [n.to_dict() for n in self.notes],
            "derived": [d.to_dict() for d in self.derived],
            "knowledge_version": self.knowledge_version,
            "disclaimer": self.disclaimer,
        }
