"""The FHIR R4 front door: Observations in, enriched Observations out (no Flask in this package but views).

Its public module: what another door may use (CDS Hooks reads its prefetch as FHIR with these).
"""
from .envelope import check, component_for
from .interpret import interpret_read
from .observations import Mapped
from .outcome import FhirError
from .reader import entry_index, read_request
from .writer import signature

__all__ = ["FhirError", "Mapped", "check", "component_for", "entry_index", "interpret_read", "read_request",
           "signature"]
