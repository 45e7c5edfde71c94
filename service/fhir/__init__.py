"""The FHIR R4 front door: Observations in, enriched Observations out (no Flask in this package but views)."""
