"""GET /metrics: Prometheus text format. Protected like the API when API keys are set (a Prometheus
scrape job sends the key with `authorization: {credentials: ...}`), because label values such as
the bands of results interpreted describe the activity of a clinical service."""
from __future__ import annotations

from flask import Blueprint, Response
from flask.typing import ResponseReturnValue

from ..http.contract import SECURED, ApiDoc
from ..http.door import Door
from . import metrics


def make_door() -> Door:
    bp = Blueprint("operations", __name__)
    doc = ApiDoc("operations", "Operational metrics.")

    @bp.get("/metrics")
    @doc.operation("/metrics", "get", (401, 500), operationId="metrics", security=SECURED, responses={"200": {
        "description": "Prometheus text exposition format 0.0.4: requests by route and status, latency "
                       "histogram, results interpreted by analyte and band, critical results by analyte.",
        "content": {"text/plain": {"schema": {"type": "string"}}}}})
    def scrape() -> ResponseReturnValue:
        """Metrics of every worker of this instance."""
        body, content_type = metrics.exposition()
        return Response(body, content_type=content_type)

    return Door(bp, doc)
