"""POST /v1/interpretations: interpret one panel."""
