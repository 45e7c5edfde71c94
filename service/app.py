"""The application factory: loads the knowledge (failing fast), wires the front doors."""
from __future__ import annotations

import copy
import inspect
import logging
from typing import Any

import flask_smorest
from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from .api import health
from .http import auth
from .api.analytes import views as analytes_views
from .api.interpretations import views as interpretations_views
from .api.interpretations.contract_doc import refine_contract
from .api.interpretations.schemas import make_schemas
from .http.problems import ApiProblem, problem_response
from .config import Settings
from .core.knowledge import Knowledge, load_knowledge
from .core.selfcheck import self_check
from .cds import views as cds_views
from .fhir import views as fhir_views
from .hl7v2 import views as hl7v2_views
from .ops import logs, per_request
from .ops.drain import DrainUnreadBody
from .ops import views as ops_views
from .web import views as web_views

log = logging.getLogger("labinterp")

API_DESCRIPTION = """\
Interprets serum vitamin B12, potassium, magnesium and calcium results (with ionized calcium and
albumin): normalizes each value to its analyte's canonical unit, classifies it against sourced
reference ranges, and adds interpretation notes that cite their sources. Decision support only.

Every error is `application/problem+json` (RFC 9457) and lists every problem of the request,
each located by a JSON pointer. Unknown fields are rejected, never ignored. The doors for other
standards answer errors in their own terms: an OperationOutcome under /fhir, an HL7 ACK under /hl7v2.
"""


class LabApi(flask_smorest.Api):
    """flask-smorest's Api with problem+json errors and no generic error component."""

    DEFAULT_ERROR_RESPONSE_NAME = None

    def _register_responses(self) -> None:  # the default "Error" components do not describe our errors
        return None

    def handle_http_exception(self, error: HTTPException) -> Response:
        headers = {k: v for k, v in error.get_headers() if k.lower() == "allow"}  # keep Allow on 405
        return error_response(error.code or 500, error.description or "", headers)


def error_response(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    """An HTTP-level error in the shape of the door it came through: OperationOutcome under /fhir/,
    an HL7 ACK under /hl7v2/, problem+json everywhere else."""
    if request.path.startswith("/fhir/"):
        return fhir_views.problem_as_outcome(status, detail, headers)
    if request.path.startswith("/hl7v2/"):
        return hl7v2_views.problem_as_ack(status, detail, headers)
    return problem_response(status, detail, headers=headers)


def _drop_doc_layers(app: Flask) -> None:
    """Serve each documented view as the plain function it is. flask-smorest's `doc` and
    `alt_response` only document, yet each wraps the view in a layer that looks up the app and
    checks for coroutines on every request (eight layers on /v1/interpretations). The contract has
    been taken from them by now, and the views use no smorest decorator that does work per request."""
    for endpoint, view in list(app.view_functions.items()):
        doc = getattr(view, "_apidoc", None)
        if doc is None:
            continue
        if set(doc) - {"manual_doc", "response", "success_status_codes"} or set(doc.get("response", {})) - {"responses"}:
            raise RuntimeError(f"{endpoint}: a flask-smorest decorator that works per request; keep its layers")
        app.view_functions[endpoint] = inspect.unwrap(view)


def _without_security(spec: dict[str, Any]) -> dict[str, Any]:
    """The contract of open-on-loopback mode: no operation requires the key (from loopback peers)."""
    spec = copy.deepcopy(spec)
    for operations in spec["paths"].values():
        for op in operations.values():
            if isinstance(op, dict) and "security" in op:
                op["security"] = [{}, {"apiKey": []}]  # anonymous from loopback, or with a key
    return spec


def _spec_kwargs() -> dict[str, Any]:
    return {"info": {"description": API_DESCRIPTION,
                     "license": {"name": "Proprietary", "identifier": "LicenseRef-Proprietary"}},
            "components": {"securitySchemes": {"apiKey": {
                "type": "http", "scheme": "bearer",
                "description": "The service's API key (LABINTERP_API_KEYS, or the key file it creates on first "
                               "start). Required on every patient path; health, readiness and this contract are open."}}}}


def create_app(settings: Settings | None = None, knowledge: Knowledge | None = None) -> Flask:
    """Build the service. Raises KnowledgeError (naming file and field) when the knowledge is invalid, and
    KeyFileError when no API key can be had."""
    logs.configure(logging.getLogger("labinterp"))
    settings = settings or Settings.from_env()
    kb = knowledge or load_knowledge(settings.ranges_dir)
    app = Flask(__name__)
    app.config.update(
        API_TITLE="labinterp", API_VERSION="1.0.0", OPENAPI_VERSION="3.1.0",
        # One byte above our limit: body.read_json probes one byte past it to tell "exactly the limit"
        # (accepted) from "more" (413); Werkzeug's own cap would refuse the probe itself.
        MAX_CONTENT_LENGTH=max(settings.max_body_bytes, settings.max_batch_bytes) + 1, JSON_SORT_KEYS=False,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["labinterp.settings"] = settings
    app.extensions["labinterp.knowledge"] = kb
    app.extensions["labinterp.readiness"] = {"knowledge": kb.name, **self_check(kb)}

    per_request.install(app)  # first: its timing and request id cover every other hook
    api = LabApi(app, spec_kwargs=_spec_kwargs())
    schemas = make_schemas(kb, settings.max_results, settings.max_string_length)
    api.register_blueprint(interpretations_views.make_blueprint(schemas, kb, settings.max_results))
    api.register_blueprint(analytes_views.blp)
    api.register_blueprint(fhir_views.blp)
    api.register_blueprint(hl7v2_views.blp)
    api.register_blueprint(cds_views.blp)
    api.register_blueprint(health.blp)
    api.register_blueprint(ops_views.blp)
    contract = refine_contract(api.spec.to_dict(), kb)
    contract = fhir_views.refine_contract(contract, settings.max_fhir_resources)
    contract = cds_views.refine_contract(contract, kb)
    _drop_doc_layers(app)
    if settings.form:  # registered after the spec is taken: HTML pages, not part of the JSON contract
        app.register_blueprint(web_views.make_blueprint(schemas))
    keys, where = auth.resolve_keys(settings.api_keys, settings.api_key_file)
    if settings.auth == auth.OPEN_ON_LOOPBACK:
        contract = _without_security(contract)
        log.warning("LABINTERP_AUTH=open-on-loopback: the API answers loopback peers without a key; "
                    "every other request needs one")
    log.info("API key: %s; send it as Authorization: Bearer <key> (the form, beyond this host, as the "
             "password of HTTP Basic)", where)
    app.extensions["labinterp.contract"] = contract
    app.extensions["labinterp.contract_yaml"] = health.render_spec(contract)

    auth.install(app, keys, settings.auth, error_response)

    @app.errorhandler(ApiProblem)
    def _api_problem(exc: ApiProblem) -> Response:
        return problem_response(exc.status, exc.detail, exc.problems, exc.title)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            return api.handle_http_exception(exc)
        # Type and place only: an exception message may quote a patient value.
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else "?"
        log.error("unhandled %s at %s (request %s, %s %s)", type(exc).__name__, where,
                  g.get("request_id"), request.method, request.path)
        return error_response(500, "an unexpected error occurred; it has been logged without request data")

    @app.after_request
    def _headers(resp: Response) -> Response:
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Cache-Control"] = "no-store"  # results are patient data
        return resp

    # Outermost: once the answer is written, what the app left unread of a body is drained (bounded).
    app.wsgi_app = DrainUnreadBody(app.wsgi_app, settings.drain_max_bytes, settings.drain_seconds)  # type: ignore[method-assign]

    log.info("knowledge %s loaded from %s: %d analytes, %d note rules", kb.version, kb.directory,
             len(kb.analytes), len(kb.notes))
    return app
