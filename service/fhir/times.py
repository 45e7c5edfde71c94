"""FHIR date and dateTime values (which may be partial: 2015, 2015-08, 2015-08-16) as UTC instants."""
from __future__ import annotations

import re
from datetime import date, datetime

from ..core.model import age_at, start_of_day

_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


def instant(text: str | None) -> tuple[datetime | None, str | None]:
    """(moment, remark): a date becomes 00:00 UTC of that day; a remark says what was assumed."""
    if not text or not isinstance(text, str):
        return None, None
    m = _PARTIAL.match(text)
    if m:
        year, month, day = int(m[1]), int(m[2] or 1), int(m[3] or 1)
        try:
            moment = start_of_day(date(year, month, day))
        except ValueError:
            return None, f"{text!r} is not a calendar date"
        if m[3]:
            return moment, None  # a date: the start of that day in UTC, as the form reads dates
        precision = "month" if m[2] else "year"
        return moment, f"{text!r} has {precision} precision; read as {moment.date().isoformat()}"
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None, f"{text[:40]!r} is not a FHIR dateTime"
    if moment.utcoffset() is None:
        return None, f"{text[:40]!r} has a time but no UTC offset, so it was not used"
    return moment, None


def age_years(birth: str | None, at: datetime | None) -> float | None:
    """Whole-day age in years at a moment (None when either is unknown or the birth is later)."""
    born, _ = instant(birth)
    if born is None or at is None:
        return None
    return age_at(born.date(), at.date())


