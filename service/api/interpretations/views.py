"""POST /v1/interpretations: parse -> core.interpret_panel -> the report as JSON."""
from __future__ import annotations

from typing import Any

from flask import current_app, jsonify
from flask.typing import ResponseReturnValue
from flask_smorest import Blueprint

from ...core import InputError, interpret_panel
from ...core.knowledge import Knowledge
from ..body import read_json
from ..problem_docs import document_problems
from ..problems import ApiProblem
from .adapter import parse_panel
from .examples import PANEL_EXAMPLE, report_example
from .schemas import ReportSchema


def make_blueprint(schemas: dict[str, Any], kb: Knowledge) -> Blueprint:
    blp = Blueprint("interpretations", __name__, url_prefix="/v1",
                    description="Interpret a panel of vitamin B12, potassium, magnesium and calcium results.")
    panel_schema, result_schema = schemas["Panel"](), schemas["ResultInput"]()

    @blp.route("/interpretations", methods=["POST"])
    @blp.doc(operationId="interpretPanel", security=[{"apiKey": []}], requestBody={
        "required": True,
        "content": {"application/json": {"schema": schemas["Panel"], "example": PANEL_EXAMPLE}},
    })
    @blp.alt_response(200, schema=ReportSchema, success=True, example=report_example(kb),
                      description="Every result, in input order, with its band, flag and notes; then panel notes.")
    @document_problems(blp, 400, 401, 413, 415, 422, 500)
    def interpret() -> ResponseReturnValue:
        """Interpret one lab panel.

        Each result is normalized to its analyte's canonical unit, classified against the reference
        interval (the laboratory's own when sent), and annotated with interpretation notes; panel
        notes combine results with the clinical context.
        """
        settings = current_app.extensions["labinterp.settings"]
        kb = current_app.extensions["labinterp.knowledge"]
        body = read_json(settings.max_body_bytes)
        try:
            panel = parse_panel(body, panel_schema, result_schema, kb, settings.max_results)
            report = interpret_panel(panel, kb)
        except InputError as exc:
            raise ApiProblem(422, f"{len(exc.problems)} problem(s) in the request", exc.problems) from None
        return jsonify(report.to_dict())

    return blp
