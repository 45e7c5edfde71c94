"""Patient history: earlier results checked like results, and each result compared with the newest
earlier one of its analyte (delta checks, reference_ranges/deltas.yaml), with a bounded trend.

The rules of judging (deltas.yaml's header says them to authors):
- the previous result is the newest earlier result of the analyte within `history.max_age_days`;
- a rule applies when the previous result is at most `window_hours` old and the change goes its
  `direction`; the first rule of the analyte that applies judges; none: not significant, rule null;
- limits are compared with the change as the report gives it (6 significant digits), so float noise
  from a unit conversion never decides a boundary; `inclusive` says whether a change equal to the
  limit counts;
- a censored value on either side has no number to subtract: no change, not significant, no rule.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from .classify import Interval, classify
from .deltas import DeltaRule, elapsed
from .errors import Problem
from .identify import identify_measurement
from .report import decimals, tidy

if TYPE_CHECKING:
    from .knowledge import Analyte, Knowledge, Limits
    from .model import HistoryInput, PanelInput


class Earlier(NamedTuple):
    """An earlier result, checked and in its analyte's canonical unit."""

    analyte: str
    value: float
    comparator: str | None
    collected_at: datetime
    iso: str  # collected_at as the report writes it (once per item, not once per use)


class TrendPoint(NamedTuple):
    collected_at: datetime
    value: float  # canonical unit
    comparator: str | None
    iso: str

    def to_dict(self) -> dict[str, Any]:
        return {"collected_at": self.iso, "value": tidy(self.value), "comparator": self.comparator}


class Delta(NamedTuple):
    """The change from the newest earlier result of the analyte, and how it was judged."""

    previous: Earlier
    unit: str  # canonical
    change: float | None  # current minus previous; None when either is censored
    change_percent: float | None
    hours: float
    significant: bool
    rule: DeltaRule | None
    previous_critical: str | None  # "LL" or "HH" when the previous result was beyond a critical limit

    @property
    def direction(self) -> str | None:
        if self.change is None or tidy(self.change) == 0:
            return None
        return "rise" if self.change > 0 else "fall"

    def to_dict(self) -> dict[str, Any]:
        p = self.previous
        return {"previous": {"value": tidy(p.value), "unit": self.unit, "comparator": p.comparator,
                             "collected_at": p.iso},
                "change": tidy(self.change), "change_percent": tidy(self.change_percent), "hours": tidy(self.hours),
                "significant": self.significant, "rule": None if self.rule is None else self.rule.id,
                "source": None if self.rule is None else self.rule.source,
                "citations": [] if self.rule is None else [c.to_dict() for c in self.rule.citations]}

    def text(self, current: float, comparator: str | None) -> str:
        """"from 4.4 to 3.0 mmol/L over 2 days (change -1.4 mmol/L, -31.8%)", as note texts quote it."""
        p = self.previous
        decimals = _decimals(p.value, current)
        out = (f"from {p.comparator or ''}{p.value:.{decimals}f} to {comparator or ''}{current:.{decimals}f} "
               f"{self.unit} over {elapsed(self.hours)}")
        if self.change is not None:
            out += f" (change {self.change:+.{decimals}f} {self.unit}"
            out += f", {self.change_percent:+.1f}%)" if self.change_percent is not None else ")"
        return out


def _decimals(*values: float) -> int:
    """One number of decimals for a pair, as laboratories print them: as many as the more precise value
    has ("4.4" and "3.0"), but no more than the size of the values warrants (two below 10, one below
    100, none above: a converted "8.0156 mg/dL" reads "8.02", a "150.04 pg/mL" reads "150")."""
    given = max(decimals(v) for v in values)
    largest = max(abs(v) for v in values)
    return min(given, 2 if largest < 10 else 1 if largest < 100 else 0)


def history_problems(item: HistoryInput, kb: Knowledge) -> list[Problem]:
    """Everything wrong with one earlier result on its own (paths relative to the item)."""
    return _check(item, kb)[1]


def _check(item: HistoryInput, kb: Knowledge) -> tuple[Earlier | None, list[Problem]]:
    (analyte, unit, _, _), value, comparator, problems = identify_measurement(
        item.analyte, item.code, item.unit, item.value, item.comparator, kb)
    if item.collected_at is None:
        problems.append(Problem(("collected_at",), "required: when the earlier specimen was collected"))
    elif item.collected_at.utcoffset() is None:
        problems.append(Problem(("collected_at",), "must include a UTC offset (for example 2026-11-19T08:00:00Z)"))
    if problems or analyte is None or unit is None or item.collected_at is None:
        return None, problems
    when = item.collected_at
    return Earlier(analyte.id, value * analyte.factors[unit.id], comparator, when, when.isoformat()), problems


def resolve_history(panel: PanelInput, kb: Knowledge) -> tuple[dict[str, list[Earlier]], list[Problem]]:
    """The earlier results by analyte, oldest first, within the look-back; or every problem, located
    (/history/<i>/...). An exact repeat of an item counts once; two different values of one analyte at
    the same moment are refused rather than one of them guessed."""
    problems: list[Problem] = []
    by_analyte: dict[str, dict[datetime, tuple[int, Earlier]]] = {}
    if panel.history and panel.collected_at is None:
        problems.append(Problem(("collected_at",), "needed to compare the results with their history"))
    for i, item in enumerate(panel.history):
        earlier, found = _check(item, kb)
        problems += [Problem(("history", i) + p.path, p.message) for p in found]
        if earlier is None:
            continue
        if panel.collected_at is not None and panel.collected_at.utcoffset() is not None \
                and earlier.collected_at >= panel.collected_at:
            problems.append(Problem(("history", i, "collected_at"), "must be before the panel's collected_at"))
            continue
        same = by_analyte.setdefault(earlier.analyte, {})
        seen = same.get(earlier.collected_at)
        if seen is None:
            same[earlier.collected_at] = (i, earlier)
        elif (tidy(seen[1].value), seen[1].comparator) != (tidy(earlier.value), earlier.comparator):
            problems.append(Problem(("history", i, "value"), f"another {earlier.analyte} result was collected at the "
                                                             f"same moment with another value (/history/{seen[0]})"))
    if problems or panel.collected_at is None:
        return {}, problems
    oldest = panel.collected_at - timedelta(days=kb.history.max_age_days)
    return {a: [e for _, e in sorted(times.values(), key=lambda x: x[1].collected_at) if e.collected_at >= oldest]
            for a, times in by_analyte.items()}, problems


def judge(analyte: Analyte, current: float, comparator: str | None, collected_at: datetime,
          earlier: list[Earlier], kb: Knowledge, interval: Interval, critical: Limits | None) -> Delta | None:
    """The delta of one result against the newest earlier result of its analyte (None: there is none)."""
    if not earlier:
        return None
    prev = earlier[-1]
    hours = (collected_at - prev.collected_at).total_seconds() / 3600
    was = classify(analyte, prev.value, prev.comparator, interval, critical)
    previous_critical = was.flag if was.critical else None
    if comparator is not None or prev.comparator is not None:
        return Delta(prev, analyte.canonical_unit, None, None, hours, False, None, previous_critical)
    change = tidy(current - prev.value) or 0.0
    percent = tidy(change / prev.value * 100) if prev.value else None
    rule = next((r for r in kb.deltas.get(analyte.id, ()) if r.applies(change, hours)), None)
    significant = rule is not None and rule.met(change, percent)
    return Delta(prev, analyte.canonical_unit, change, percent, hours, significant, rule, previous_critical)


def trend(earlier: list[Earlier], current: float, comparator: str | None, collected_at: datetime,
          points: int) -> tuple[TrendPoint, ...]:
    """The analyte's earlier results and this one, oldest first, the newest `points` of them; empty
    when there is no earlier result (nothing to draw)."""
    if not earlier:
        return ()
    series = [TrendPoint(e.collected_at, e.value, e.comparator, e.iso) for e in earlier[-points + 1:]]
    series.append(TrendPoint(collected_at, current, comparator, collected_at.isoformat()))
    return tuple(series)
