"""The application layer: a JSON panel in, a report or located problems out.

Every door that takes the JSON panel (the API, its batch, the form, the command line) calls
`Panels.interpret`; the doors that speak another standard (FHIR, CDS Hooks, HL7 v2) build the core's
PanelInput themselves and call `Panels.run`. Both hand the reports to the metrics. No Flask here.
"""
from .batch import BatchLimits, envelope_problems, outcome_document
from .interpret import Limits, Outcome, Panels
from .schemas import make_schemas

__all__ = ["BatchLimits", "Limits", "Outcome", "Panels", "envelope_problems", "make_schemas", "outcome_document"]
