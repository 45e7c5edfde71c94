"""A start-up self-test of the loaded knowledge through the real pipeline, so that readiness means
"this process has interpreted results correctly", not merely "the files parsed"."""
from __future__ import annotations

import math
from datetime import datetime, UTC

from .classify import classify_point, select_limits
from .interpret import interpret_panel
from .knowledge import Knowledge
from .model import PanelInput, Patient, ResultInput
from .units import convert_with_pint


class SelfCheckError(RuntimeError):
    """The knowledge loaded but does not interpret as it must; the service must not start."""


def self_check(kb: Knowledge) -> dict[str, int]:
    """Interpret, for every analyte and every unit it accepts, the middle of its default reference
    interval, converted into that unit by pint itself (not by the cached factor): each must come back
    through the pipeline at that canonical value, in the band that value has when classified
    directly. So a cached factor that disagrees with pint, or a pipeline that misreads a unit, stops
    start-up. Returns what was checked; raises SelfCheckError otherwise."""
    results, expected = [], []
    for analyte in kb.analytes.values():
        ri = analyte.reference_interval
        if ri.low is None or ri.high is None:
            continue
        middle = (ri.low + ri.high) / 2
        canonical = kb.units.units[analyte.canonical_unit]
        for unit in analyte.factors:
            value = convert_with_pint(middle, canonical, kb.units.units[unit], analyte.molar_mass, analyte.valence)
            results.append(ResultInput(value=value, unit=unit, analyte=analyte.id, id=f"{analyte.id}/{unit}"))
            expected.append((analyte, middle))
    report = interpret_panel(PanelInput(tuple(results), collected_at=datetime(2000, 1, 1, tzinfo=UTC)), kb)
    for (analyte, middle), got in zip(expected, report.results, strict=True):
        interval, critical = select_limits(analyte, Patient())
        band = classify_point(analyte, middle, interval, critical).band
        if got.band != band or not math.isclose(got.normalized_value, middle, rel_tol=1e-9):
            raise SelfCheckError(f"{got.id}: read as {got.normalized_value:g} {got.canonical_unit} ({got.band}), "
                                 f"expected {middle:g} ({band})")
    return {"analytes": len({a.id for a, _ in expected}), "conversions": len(expected)}
