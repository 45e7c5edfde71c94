"""GET /v1/analytes: the knowledge catalogue."""
