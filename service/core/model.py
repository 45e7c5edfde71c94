"""Core input types: what every front door parses its request into."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import NamedTuple


@dataclass(frozen=True)
class Patient:
    age_years: float | None = None
    sex: str | None = None  # female | male | other | unknown


def start_of_day(day: date) -> datetime:
    """Where a moment is needed and only a day is known, the day's start in UTC: how every door (the
    form's date fields, FHIR's dates) turns a day into a time the core compares."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def age_at(born: date, at: date) -> float | None:
    """Whole-day age in years on a day (None when the birth is later): how every door that reads a
    birth date turns it into Patient.age_years, so an age partition is chosen the same way."""
    days = (at - born).days
    return None if days < 0 else round(days / 365.2425, 2)


@dataclass(frozen=True)
class Context:
    """Clinical context that panel notes combine with results."""

    b12_injection_at: datetime | None = None
    b12_therapy_started_at: datetime | None = None
    medications: frozenset[str] = frozenset()
    diet: str | None = None
    symptoms: frozenset[str] = frozenset()
    conditions: frozenset[str] = frozenset()
    hemolyzed: bool = False


@dataclass(frozen=True)
class LabRange:
    """A laboratory's own reference interval sent with a result; overrides the default limits."""

    low: float | None = None
    high: float | None = None
    unit: str | None = None  # as sent; None means the result's own unit
    text: str | None = None


@dataclass(frozen=True)
class ResultInput:
    """One result as received: the analyte by id/alias or LOINC code, a number or censored string."""

    value: float | int | str | None
    unit: str | None
    analyte: str | None = None
    code: str | None = None
    id: str | None = None
    comparator: str | None = None
    reference_range: LabRange | None = None


class HistoryInput(NamedTuple):
    """An earlier result of the same patient, as received: compared with the panel's results of its analyte.
    A NamedTuple (immutable, and several times cheaper to build than a frozen dataclass: a panel may
    carry a hundred of them)."""

    value: float | int | str | None
    unit: str | None
    collected_at: datetime | None
    analyte: str | None = None
    code: str | None = None
    comparator: str | None = None


@dataclass(frozen=True)
class PanelInput:
    results: tuple[ResultInput, ...]
    patient: Patient = field(default_factory=Patient)
    context: Context = field(default_factory=Context)
    collected_at: datetime | None = None
    history: tuple[HistoryInput, ...] = ()
