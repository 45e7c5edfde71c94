"""POST /v1/interpretations: parse -> core.interpret_panel -> the report as JSON."""
from __future__ import annotations

from typing import Any

from flask import current_app
from flask.typing import ResponseReturnValue
from flask_smorest import Blueprint

from ...core import InputError, Problem, interpret_panel
from ...core.knowledge import Knowledge
from ...http.body import json_response, read_json
from ...http.problem_docs import document_problems
from ...http.problems import ApiProblem
from ...ops.per_request import note_reports
from .adapter import parse_panel
from .batch import MAX_PANELS, Interpreter
from .examples import PANEL_EXAMPLE, report_example
from .schemas import BatchReportSchema, ReportSchema


def make_blueprint(schemas: dict[str, Any], kb: Knowledge, max_results: int) -> Blueprint:
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
        note_reports([report])
        return json_response(report.to_dict())

    interpreter = Interpreter(kb, panel_schema, result_schema, max_results)

    @blp.route("/interpretations/batch", methods=["POST"])
    @blp.doc(operationId="interpretBatch", security=[{"apiKey": []}], requestBody={
        "required": True,
        "content": {"application/json": {"schema": batch_request_schema(), "example": {"panels": [PANEL_EXAMPLE]}}},
    })
    @blp.alt_response(200, schema=BatchReportSchema, success=True,
                      description="One entry per panel, in order: its report (status 200) or its problem (422).")
    @document_problems(blp, 400, 401, 413, 415, 422, 500)
    def interpret_batch() -> ResponseReturnValue:
        """Interpret up to 1,000 panels.

        Each panel is interpreted as by `POST /v1/interpretations` and gets its own report or its own
        problem (pointers into the whole request, `/panels/<index>/...`), so one bad panel never fails
        or hides the others. A 4xx answers only an invalid envelope, which includes more results in
        all than the service's batch limit (20,000 by default).
        """
        settings = current_app.extensions["labinterp.settings"]
        body = read_json(settings.max_batch_bytes)
        panels = body.get("panels") if isinstance(body, dict) else None
        problems = []
        if not isinstance(body, dict):
            problems.append(Problem((), "expected a JSON object with `panels`"))
        else:
            problems += [Problem((k,), "unknown field") for k in body if k != "panels"]
            if not isinstance(panels, list) or not 1 <= len(panels) <= MAX_PANELS:
                problems.append(Problem(("panels",), f"expected an array of 1 to {MAX_PANELS} panels"))
            else:
                results = sum(len(p["results"]) for p in panels if isinstance(p, dict) and isinstance(p.get("results"), list))
                if results > settings.max_batch_results:
                    problems.append(Problem(("panels",), f"at most {settings.max_batch_results} results in one batch, "
                                                         f"all panels together; got {results}: split the batch"))
        if problems:
            raise ApiProblem(422, f"{len(problems)} problem(s) in the batch envelope", problems)
        outcomes = list(interpreter.outcomes(panels or [], at=("panels",)))
        note_reports(report for _, report in outcomes if report is not None)
        return json_response({"results": [outcome for outcome, _ in outcomes], "knowledge_version": kb.version, "disclaimer": kb.disclaimer})

    return blp


def batch_request_schema() -> dict[str, Any]:
    return {"type": "object", "required": ["panels"], "additionalProperties": False, "properties": {"panels": {
        "type": "array", "minItems": 1, "maxItems": MAX_PANELS,
        "items": {"description": "A panel as `Panel`. An invalid one gets its own 422 problem in the response; "
                                 "it does not fail the batch.", "anyOf": [{"$ref": "#/components/schemas/Panel"}, {}]}}}}
