"""GET /metrics: Prometheus text format. Protected like the API when API keys are set (a Prometheus
scrape job sends the key with `authorization: {credentials: ...}`), because label values such as
the bands of results interpreted describe the activity of a clinical service."""
from __future__ import annotations

from flask import Response
from flask.typing import ResponseReturnValue
from flask_smorest import Blueprint

from ..http.problem_docs import document_problems
from . import metrics

blp = Blueprint("operations", __name__, description="Operational metrics.")


@blp.route("/metrics", methods=["GET"])
@blp.doc(operationId="metrics", security=[{"apiKey": []}], responses={"200": {
    "description": "Prometheus text exposition format 0.0.4: requests by route and status, latency "
                   "histogram, results interpreted by analyte and band, critical results by analyte.",
    "content": {"text/plain": {"schema": {"type": "string"}}}}})
@document_problems(blp, 401, 500)
def scrape() -> ResponseReturnValue:
    """Metrics of every worker of this instance."""
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type)
