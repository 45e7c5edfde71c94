"""The application factory: loads the knowledge (failing fast), builds the application layer and wires
the front doors, each with its blueprint, its part of the contract and its way of saying an error."""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from .api import health
from .api.analytes import views as analytes_views
from .api.interpretations import views as interpretations_views
from .cds import views as cds_views
from .config import Settings
from .core.knowledge import Knowledge, load_knowledge
from .core.selfcheck import self_check
from .fhir import views as fhir_views
from .hl7v2 import views as hl7v2_views
from .http import auth
from .http.contract import build_contract
from .http.door import Door, ErrorRenderer, problem_error
from .http.problems import ApiProblem, problem_response
from .http.writer import OrjsonProvider
from .ops import logs
from .ops import views as ops_views
from .ops.drain import DrainUnreadBody
from .ops.per_request import REQUEST_ID_KEY, RequestBookkeeping
from .panels import Panels
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
INFO = {"description": API_DESCRIPTION, "license": {"name": "Proprietary", "identifier": "LicenseRef-Proprietary"}}
SECURITY_SCHEME = {"type": "http", "scheme": "bearer", "description": (
    "The service's API key (LABINTERP_API_KEYS, or the key file it creates on first start). Required on every "
    "patient path; health, readiness and this contract are open.")}


@dataclass(frozen=True)
class Service:
    """What the factory built, for tools and tests (`service_of(app)`); views get theirs explicitly."""

    settings: Settings
    knowledge: Knowledge
    contract: dict[str, Any]
    contract_yaml: str


def service_of(app: Flask) -> Service:
    service: Service = app.extensions["labinterp"]
    return service


def _without_security(spec: dict[str, Any]) -> dict[str, Any]:
    """The contract of open-on-loopback mode: no operation requires the key (from loopback peers)."""
    spec = copy.deepcopy(spec)
    for operations in spec["paths"].values():
        for op in operations.values():
            if isinstance(op, dict) and "security" in op:
                op["security"] = [{}, {"apiKey": []}]  # anonymous from loopback, or with a key
    return spec


def _doors(kb: Knowledge, settings: Settings, panels: Panels, contract_yaml: list[str]) -> list[Door]:
    """Every door, in the contract's order; the form last, only when it is on."""
    doors = [
        interpretations_views.make_door(panels, settings.batch_limits(), settings.max_body_bytes,
                                        settings.max_batch_bytes),
        analytes_views.make_door(kb),
        fhir_views.make_door(kb, settings),
        hl7v2_views.make_door(kb, settings),
        cds_views.make_door(kb, settings),
        health.make_door(kb, {"knowledge": kb.name, **self_check(kb)}, lambda: contract_yaml[0]),
        ops_views.make_door(),
    ]
    if settings.form:
        doors.append(web_views.make_door(panels, settings.max_body_bytes))
    return doors


def _contract(doors: list[Door], auth_mode: str) -> dict[str, Any]:
    contract = build_contract((d.doc for d in doors if d.doc is not None), INFO, SECURITY_SCHEME)
    for door in doors:
        if door.refine_contract is not None:
            contract = door.refine_contract(contract)
    return _without_security(contract) if auth_mode == auth.OPEN_ON_LOOPBACK else contract


def _install_errors(app: Flask, doors: list[Door]) -> ErrorRenderer:
    """Each error in the shape of the door whose prefix the path is under (problem+json elsewhere), so
    that even a 404 or 405 that matched no view is said in the protocol its client speaks."""
    prefixed = sorted((d for d in doors if d.prefix), key=lambda d: len(d.prefix), reverse=True)

    def render(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
        path = request.path
        for door in prefixed:
            if path == door.prefix or path.startswith(door.prefix + "/"):
                return door.render_error(status, detail, headers)
        return problem_error(status, detail, headers)

    @app.errorhandler(ApiProblem)
    def _api_problem(exc: ApiProblem) -> Response:
        return problem_response(exc.status, exc.detail, exc.problems, exc.title)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        headers = {k: v for k, v in exc.get_headers() if k.lower() == "allow"}  # keep Allow on 405
        return render(exc.code or 500, exc.description or "", headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        # Type and place only: an exception message may quote a patient value.
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else "?"
        log.error("unhandled %s at %s (request %s, %s %s)", type(exc).__name__, where,
                  request.environ.get(REQUEST_ID_KEY), request.method, request.path)
        return render(500, "an unexpected error occurred; it has been logged without request data")

    return render


def create_app(settings: Settings | None = None, knowledge: Knowledge | None = None) -> Flask:
    """Build the service. Raises KnowledgeError (naming file and field) when the knowledge is invalid, and
    KeyFileError when no API key can be had."""
    logs.configure(logging.getLogger("labinterp"))
    settings = settings or Settings.from_env()
    kb = knowledge or load_knowledge(settings.ranges_dir)
    app = Flask(__name__)
    app.json = OrjsonProvider(app)
    # One byte above our limit: body.read_json probes one byte past it to tell "exactly the limit"
    # (accepted) from "more" (413); Werkzeug's own cap would refuse the probe itself.
    app.config["MAX_CONTENT_LENGTH"] = max(settings.max_body_bytes, settings.max_batch_bytes) + 1
    panels = Panels(kb, settings.panel_limits())
    contract_yaml: list[str] = []
    doors = _doors(kb, settings, panels, contract_yaml)
    for door in doors:
        app.register_blueprint(door.blueprint)
    contract = _contract(doors, settings.auth)
    contract_yaml.append(health.render_spec(contract))
    app.extensions["labinterp"] = Service(settings, kb, contract, contract_yaml[0])
    render_error = _install_errors(app, doors)
    keys, where = auth.resolve_keys(settings.api_keys, settings.api_key_file)
    auth.install(app, keys, settings.auth, render_error)
    if settings.auth == auth.OPEN_ON_LOOPBACK:
        log.warning("LABINTERP_AUTH=open-on-loopback: the API answers loopback peers without a key; "
                    "every other request needs one")
    log.info("API key: %s; send it as Authorization: Bearer <key> (the form, beyond this host, as the "
             "password of HTTP Basic)", where)
    # Bookkeeping around every answer; outermost, once the answer is written, what the app left unread
    # of a body is drained (bounded).
    app.wsgi_app = DrainUnreadBody(RequestBookkeeping(app.wsgi_app), settings.drain_max_bytes,  # type: ignore[method-assign]
                                   settings.drain_seconds)
    log.info("knowledge %s loaded from %s: %d analytes, %d note rules", kb.version, kb.directory,
             len(kb.analytes), len(kb.notes))
    return app
