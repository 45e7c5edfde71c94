"""Deterministic synthetic panels that span every band and every context term of one or more
knowledge folders: the input of `labinterp diff-knowledge` when a laboratory has no panels of its own
at hand, and of the impact figures in docs/clinical-safety.md.

The same (count, seed, folders) always gives the same panels, byte for byte.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta, UTC
from typing import Any
from collections.abc import Iterator, Sequence

from ..core.knowledge import Analyte, Knowledge

BASE_TIME = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
AGES = (None, 0.5, 8, 16, 30, 45, 59.9, 60, 75, 90)
DAYS_BEFORE = (None, None, 0.5, 2, 5, 10, 14, 20, 45, 100, 1100)


def _limits(a: Analyte, kbs: Sequence[Knowledge]) -> list[float]:
    """Every limit any of the folders sets for this analyte, in its canonical unit, sorted."""
    points: set[float] = set()
    for kb in kbs:
        other = kb.analytes.get(a.id)
        if other is None:
            continue
        sets = [other.reference_interval, other.implausible, *(p.reference_interval for p in other.partitions)]
        sets += [other.critical] if other.critical else []
        sets += list(other.critical_alternatives)
        for lim in sets:
            points |= {x for x in (lim.low, lim.high) if x is not None}
        points |= {x for s in other.bands.subdivisions for x in (s.upper, s.lower) if x is not None}
    return sorted(points)


def _value(rng: random.Random, limits: list[float]) -> float:
    """A canonical value: exactly a limit (edges matter most), between two, or beyond the outermost."""
    roll = rng.random()
    if roll < 0.2:
        return rng.choice(limits)
    if roll < 0.9:
        i = rng.randrange(len(limits) - 1)
        return rng.uniform(limits[i], limits[i + 1])
    return rng.uniform(limits[-1], limits[-1] * 2.5) if rng.random() < 0.5 else rng.uniform(0, limits[0])


def _rounded(x: float) -> float:
    """As a laboratory reports it: three significant figures."""
    return float(f"{x:.3g}") if x > 0 else 0.0


def _result(rng: random.Random, a: Analyte, kbs: Sequence[Knowledge], rid: str) -> dict[str, Any]:
    unit = rng.choice(a.units)
    value: Any = _rounded(_value(rng, _limits(a, kbs)) / a.factors[unit])
    out: dict[str, Any] = {"id": rid, "analyte": a.id, "value": value, "unit": unit}
    if rng.random() < 0.03:
        out["value"] = rng.choice(("<", ">", "<=", ">=")) + f"{value:g}"
    if rng.random() < 0.08:  # a laboratory's own interval, shifted from the default
        ri = a.reference_interval
        shift = rng.uniform(0.85, 1.2)
        out["reference_range"] = {"low": _rounded(ri.low * shift / a.factors[unit]),  # type: ignore[operator]
                                  "high": _rounded(ri.high * shift / a.factors[unit])}  # type: ignore[operator]
    return out


def _context(rng: random.Random, collected: datetime, kbs: Sequence[Knowledge]) -> dict[str, Any]:
    ctx: dict[str, Any] = {}
    for kind in ("medications", "symptoms", "conditions"):
        terms = sorted({t for kb in kbs for t in kb.vocabulary.ids(kind)})
        chosen = [t for t in terms if rng.random() < 1 / len(terms)]
        if chosen:
            ctx[kind] = chosen
    diets = sorted({t for kb in kbs for t in kb.vocabulary.ids("diet")})
    if rng.random() < 0.5:
        ctx["diet"] = rng.choice(diets)
    for key in ("b12_injection_at", "b12_therapy_started_at"):
        days = rng.choice(DAYS_BEFORE)
        if days is not None:
            ctx[key] = (collected - timedelta(days=days)).isoformat()
    if rng.random() < 0.08:
        ctx["specimen"] = {"hemolyzed": True}
    return ctx


def synthetic_panels(kbs: Sequence[Knowledge], count: int, seed: int = 2026) -> Iterator[dict[str, Any]]:
    """`count` panels as POST /v1/interpretations takes them; context terms are drawn from the union of
    the folders' vocabularies, so a folder that lacks a term refuses the panels that use it."""
    rng = random.Random(seed)
    analytes = sorted({a.id: a for kb in reversed(kbs) for a in kb.analytes.values()}.items())
    for i in range(count):
        chosen = rng.sample(analytes, rng.randint(1, len(analytes)))
        collected = BASE_TIME + timedelta(minutes=7 * i)
        panel: dict[str, Any] = {"collected_at": collected.isoformat(),
                                 "results": [_result(rng, a, kbs, name) for name, a in chosen]}
        age = rng.choice(AGES)
        if age is not None:
            panel["patient"] = {"age_years": age}
        context = _context(rng, collected, kbs)
        if context:
            panel["context"] = context
        yield panel
