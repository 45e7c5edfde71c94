"""The documented example: the panel of the README, and the report the core really returns for it."""
from __future__ import annotations

from typing import Any

from ...core import interpret_panel
from ...core.knowledge import Knowledge
from ...panels import Limits, Panels

PANEL_EXAMPLE: dict[str, Any] = {
    "patient": {"age_years": 67, "sex": "female"},
    "context": {"b12_injection_at": "2026-11-17T09:00:00+00:00", "symptoms": ["muscle_cramps"]},
    "collected_at": "2026-11-19T08:30:00+00:00",
    "results": [
        {"id": "b12", "analyte": "vitamin_b12", "value": 180, "unit": "pg/mL"},
        {"id": "k", "code": "2823-3", "value": 3.1, "unit": "mmol/L"},
        {"id": "mg", "analyte": "magnesium", "value": 1.5, "unit": "mg/dL"},
        {"id": "ca", "analyte": "calcium", "value": 8.1, "unit": "mg/dL"},
    ],
}


def report_example(kb: Knowledge) -> dict[str, Any]:
    """Run the example through the real parser and core, so the documented answer cannot go stale
    (the core itself: an example is not a result to count in the metrics)."""
    panels = Panels(kb, Limits(max_results=len(PANEL_EXAMPLE["results"])))
    return interpret_panel(panels.read(PANEL_EXAMPLE), kb).to_dict()
