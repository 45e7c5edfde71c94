"""The delta-check rules and history limits of deltas.yaml, as loaded (service/core/history.py applies them)."""
from __future__ import annotations

from typing import Any, NamedTuple


class DeltaRule(NamedTuple):
    """One delta-check rule of deltas.yaml; limits in the analyte's canonical unit."""

    id: str
    analyte: str
    window_hours: float
    direction: str  # any | rise | fall
    absolute: float | None
    percent: float | None
    combine: str  # any | all
    inclusive: bool
    source: str  # a tag of sources.yaml
    reference: str  # the source as responses cite it (its URL)
    confirmed: bool
    why: str
    citations: tuple[Any, ...] = ()  # core.report.Citation: the source with its title

    def applies(self, change: float, hours: float) -> bool:
        if hours > self.window_hours:
            return False
        return self.direction == "any" or (change > 0) == (self.direction == "rise")

    def met(self, change: float, percent: float | None) -> bool:
        """Whether the change reaches this rule's limits (percent None: the previous value was 0)."""
        tests = []
        if self.absolute is not None:
            tests.append(self._reaches(abs(change), self.absolute))
        if self.percent is not None:
            tests.append(percent is not None and self._reaches(abs(percent), self.percent))
        return any(tests) if self.combine == "any" else all(tests)

    def _reaches(self, size: float, limit: float) -> bool:
        return size >= limit if self.inclusive else size > limit

    def limit_text(self, unit: str) -> str:
        parts = [f"{self.absolute:g} {unit}" if self.absolute is not None else None,
                 f"{self.percent:g}%" if self.percent is not None else None]
        joined = f" {'or' if self.combine == 'any' else 'and'} ".join(p for p in parts if p)
        hours = self.window_hours
        window = f"{hours / 24:g} days" if hours >= 72 and hours % 24 == 0 else f"{hours:g} hours"
        return f"{joined} within {window}"


class HistoryLimits(NamedTuple):
    max_age_days: float = 400
    trend_points: int = 10


def elapsed(hours: float) -> str:
    """An interval as note texts say it: hours below two days, days from there."""
    if hours < 48:
        n = round(hours)
        return f"{n} hour{'s' if n != 1 else ''}"
    return f"{round(hours / 24)} days"
