"""POST /v1/interpretations and /v1/interpretations/batch: JSON in, the application layer, JSON out."""
from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from ...http.body import read_json
from ...http.contract import SECURED, ApiDoc, json_content, response
from ...http.door import Door
from ...http.problems import ApiProblem
from ...http.writer import json_response
from ...panels import BatchLimits, Panels, envelope_problems, outcome_document
from ...panels.batch import BatchSchema
from .contract_doc import refine_contract
from .examples import PANEL_EXAMPLE, report_example
from .schemas import BatchReportSchema, ReportSchema

PROBLEMS = (400, 401, 413, 415, 422, 500)


def make_door(panels: Panels, batch: BatchLimits, max_body_bytes: int, max_batch_bytes: int) -> Door:
    kb = panels.kb
    bp = Blueprint("interpretations", __name__, url_prefix="/v1")
    doc = ApiDoc("interpretations", "Interpret a panel of vitamin B12, potassium, magnesium and calcium results.", "/v1")

    @bp.post("/interpretations")
    @doc.operation("/interpretations", "post", PROBLEMS, operationId="interpretPanel", security=SECURED,
                   requestBody={"required": True, "content": json_content(panels.schemas["Panel"], PANEL_EXAMPLE)},
                   responses={"200": response("Every result, in input order, with its band, flag and notes; then "
                                              "panel notes.", ReportSchema, report_example(kb))})
    def interpret() -> ResponseReturnValue:
        """Interpret one lab panel.

        Each result is normalized to its analyte's canonical unit, classified against the reference
        interval (the laboratory's own when sent), and annotated with interpretation notes; panel
        notes combine results with the clinical context.
        """
        outcome = panels.interpret(read_json(max_body_bytes))
        if outcome.report is None:
            raise ApiProblem(422, f"{len(outcome.problems)} problem(s) in the request", outcome.problems)
        return json_response(outcome.report.to_dict())

    @bp.post("/interpretations/batch")
    @doc.operation("/interpretations/batch", "post", PROBLEMS, operationId="interpretBatch", security=SECURED,
                   requestBody={"required": True, "content": json_content(BatchSchema, {"panels": [PANEL_EXAMPLE]})},
                   responses={"200": response("One entry per panel, in order: its report (status 200) or its "
                                              "problem (422).", BatchReportSchema)})
    def interpret_batch() -> ResponseReturnValue:
        """Interpret up to 1,000 panels.

        Each panel is interpreted as by `POST /v1/interpretations` and gets its own report or its own
        problem (pointers into the whole request, `/panels/<index>/...`), so one bad panel never fails
        or hides the others. A 4xx answers only an invalid envelope, which includes more results in
        all than the service's batch limit (20,000 by default).
        """
        body = read_json(max_batch_bytes)
        problems = envelope_problems(body, batch)
        if problems:
            raise ApiProblem(422, f"{len(problems)} problem(s) in the batch envelope", problems)
        results = [outcome_document(i, panels.interpret(p), ("panels", i)) for i, p in enumerate(body["panels"])]
        return json_response({"results": results, "knowledge_version": kb.version, "disclaimer": kb.disclaimer})

    return Door(bp, doc, refine_contract=lambda contract: refine_contract(contract, kb))
