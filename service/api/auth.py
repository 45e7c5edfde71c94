"""Bearer API keys for /v1, /fhir, /hl7v2, /cds-services and /metrics: constant-time comparison; health,
the contract and the form stay open."""
from __future__ import annotations

import hmac
import logging

from typing import Callable

from flask import Flask, Response, request

log = logging.getLogger("labinterp")
PROTECTED_PREFIXES = ("/v1/", "/fhir/", "/hl7v2/", "/cds-services", "/metrics")
MAX_KEY_LENGTH = 256


def _authorized(header: str, keys: tuple[bytes, ...]) -> bool:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token or len(token) > MAX_KEY_LENGTH:
        return False
    given = token.strip().encode("utf-8", "surrogateescape")
    # Compare against every key, always, so timing says nothing about which key nearly matched.
    return sum(hmac.compare_digest(given, key) for key in keys) > 0


def install(app: Flask, api_keys: tuple[str, ...], refuse: Callable[[int, str, dict[str, str]], Response]) -> None:
    """Require a key on the API paths when keys are configured; otherwise say once that they run open."""
    if not api_keys:
        log.warning("LABINTERP_API_KEYS is not set: /v1, /fhir, /hl7v2, /cds-services and /metrics accept "
                    "requests without authentication")
        return
    keys = tuple(k.encode("utf-8") for k in api_keys)
    log.info("API keys configured: /v1, /fhir, /hl7v2, /cds-services and /metrics require Authorization: "
             "Bearer <key>")

    @app.before_request
    def _require_key() -> Response | None:
        if not request.path.startswith(PROTECTED_PREFIXES):
            return None
        if _authorized(request.headers.get("Authorization", ""), keys):
            return None
        return refuse(401, "send a valid API key as Authorization: Bearer <key>",
                      {"WWW-Authenticate": 'Bearer realm="labinterp"'})
