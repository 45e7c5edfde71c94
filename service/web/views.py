"""GET / and POST /: the clinician form and its results page, rendered from the core's report.

A thin adapter: form -> the JSON panel -> the application layer, as POST /v1/interpretations
-> HTML. HTML pages, not part of the JSON contract (openapi.yaml); see docs/clinician-form.md.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, render_template, request

from ..core.knowledge import Knowledge
from ..core.report import PanelReport
from ..http.door import Door
from ..panels import Panels
from . import form as webform
from . import rangebar, trend

# Pages with patient data: nothing from elsewhere, no framing, forms post only here.
CSP = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"


def _page(html: str, status: int = 200) -> Response:
    resp = Response(html, status=status, mimetype="text/html")
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["X-Frame-Options"] = "DENY"
    return resp


def _render_form(kb: Knowledge, values: dict[str, Any], errors: dict[str, list[str]],
                 report: PanelReport | None = None, bars: dict[str, rangebar.RangeBar] | None = None,
                 compared: tuple[str, ...] = ()) -> str:
    """The page; with a report, its results above the form. `compared`: the analytes sent with an
    earlier value (one the core left out, beyond its look-back, is said so on the page)."""
    trends, changes = {}, {}
    for r in report.results if report else ():
        trends[r.id] = trend.build(r.trend, r.canonical_unit, kb.analytes[r.analyte].name)
        changes[r.id] = trend.describe_change(r.delta) if r.delta is not None else None
    return render_template("labinterp/page.html", kb=kb, fields=webform.analyte_fields(kb),
                           vocab=webform.vocabularies(kb), values=values, errors=errors,
                           form_error=webform.FORM_ERROR, labels=webform.field_labels(kb), report=report, bars=bars or {},
                           analytes=kb.analytes, tone=rangebar.tone, trends=trends, changes=changes,
                           compared=compared, look_back_days=kb.history.max_age_days)


def _too_large(limit: int) -> bool:
    """Whether the body is over the form's limit, read to at most one byte past it (as body.read_json
    probes). The app-wide cap is the batch endpoint's, far larger than a form needs; and Werkzeug cuts a
    body without Content-Length short at that cap instead of refusing it, which must never reach the
    form parser as if it were the whole form. What is read is kept for request.form."""
    if (request.content_length or 0) > limit:
        return True  # refused unread
    request.max_content_length = limit + 1  # Flask's per-request cap: the stream ends one byte past the limit
    return len(request.get_data(cache=True)) > limit


def make_door(panels: Panels, max_body_bytes: int) -> Door:
    """HTML pages, not part of the JSON contract: a door without an ApiDoc."""
    kb, max_string = panels.kb, panels.limits.max_string_length
    bp = Blueprint("web", __name__, template_folder="templates", static_folder="static",
                   static_url_path="/assets")

    @bp.get("/")
    def form() -> Response:
        return _page(_render_form(kb, {}, {}))

    @bp.post("/")
    def interpret() -> Response:
        if _too_large(max_body_bytes):
            message = f"the form sent is larger than {max_body_bytes} bytes; nothing was interpreted"
            return _page(_render_form(kb, {}, {webform.FORM_ERROR: [message]}), 413)
        single = {k: v[:max_string] for k, v in request.form.items()}
        lists = {k: request.form.getlist(k) for k in webform.LIST_FIELDS}
        values: dict[str, Any] = {**single, **lists}
        parsed = webform.to_panel_json(single, lists, kb)
        outcome = panels.interpret(parsed.body)
        errors = webform.field_errors(list(outcome.problems), parsed, kb)
        if errors or outcome.report is None:
            return _page(_render_form(kb, values, errors), 422)
        bars = {r.id: rangebar.build(r, kb.analytes[r.analyte]) for r in outcome.report.results}
        return _page(_render_form(kb, values, {}, outcome.report, bars, parsed.history_sources))

    return Door(bp)
