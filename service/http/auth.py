"""Secure by default: patient endpoints never answer without a key beyond loopback.

- /v1, /fhir, /cds-services, /hl7v2 and /metrics need `Authorization: Bearer <key>`, always. The keys
  are LABINTERP_API_KEYS; when it is unset, the key in LABINTERP_API_KEY_FILE (default
  `.labinterp/api-key`, created with a fresh random key on first start, readable by its owner only),
  as Jupyter does with its token: `make run` works at once, and the log says where the key is.
- LABINTERP_AUTH=open-on-loopback, asked for by name, lets those paths answer without a key, and only
  to a peer on loopback that sends no forwarding header (a proxy on the same host would otherwise turn
  loopback into the whole network). gunicorn.conf.py refuses it unless the service listens on loopback.
- The clinician form (/) answers a loopback peer as it is; beyond loopback (or through a proxy) it needs
  the API key as the password of HTTP Basic authentication, which every browser can send.
- Health, readiness, the contract and the form's assets stay open: they carry no patient data.

Keys are compared in constant time, each against all.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import logging
import os
import secrets
from pathlib import Path
from collections.abc import Callable

from flask import Flask, Response, request

log = logging.getLogger("labinterp")
PROTECTED_PREFIXES = ("/v1/", "/fhir/", "/cds-services", "/hl7v2/", "/metrics")
FORM_PATHS = frozenset({"/"})
PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")
MAX_KEY_LENGTH = 256
MIN_KEY_LENGTH = 16
OPEN_ON_LOOPBACK = "open-on-loopback"  # one of config.AUTH_MODES

Refuse = Callable[[int, str, dict[str, str]], Response]


class KeyFileError(RuntimeError):
    """The key file cannot be read or created: the service must not start without a key."""


def resolve_keys(api_keys: tuple[str, ...], key_file: str) -> tuple[tuple[str, ...], str]:
    """The keys the service accepts, and where they come from (for the start-up log; never the key)."""
    if api_keys:
        return api_keys, "LABINTERP_API_KEYS"
    path = Path(key_file)
    if path.is_file():
        return (_read_key(path),), f"the key file {path}"
    try:
        if not path.parent.is_dir():
            path.parent.mkdir(mode=0o700, parents=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.is_file():  # another process created it first
            return (_read_key(path),), f"the key file {path}"
        raise KeyFileError(f"cannot create the API key file {path}: a file is in the way; set LABINTERP_API_KEYS "
                           "or LABINTERP_API_KEY_FILE to a writable place") from None
    except OSError as exc:
        raise KeyFileError(f"cannot create the API key file {path} ({exc.strerror}); set LABINTERP_API_KEYS "
                           "or LABINTERP_API_KEY_FILE to a writable place") from None
    key = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key + "\n")
    return (key,), f"a new key generated into {path}"


def _read_key(path: Path) -> str:
    try:
        key = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"cannot read the API key file {path}: {exc}") from None
    if not MIN_KEY_LENGTH <= len(key) <= MAX_KEY_LENGTH:
        raise KeyFileError(f"the API key file {path} must hold one key of {MIN_KEY_LENGTH} to {MAX_KEY_LENGTH} characters")
    return key


def _matches(given: str, keys: tuple[bytes, ...]) -> bool:
    if not given or len(given) > MAX_KEY_LENGTH:
        return False
    token = given.strip().encode("utf-8", "surrogateescape")
    # Compare against every key, always, so timing says nothing about which key nearly matched.
    return sum(hmac.compare_digest(token, key) for key in keys) > 0


def _bearer(header: str) -> str:
    scheme, _, token = header.partition(" ")
    return token if scheme.lower() == "bearer" else ""


def _basic_password(header: str) -> str:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or len(encoded) > 4 * MAX_KEY_LENGTH:
        return ""
    try:
        return base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")[2]
    except (binascii.Error, UnicodeDecodeError):
        return ""


def direct_loopback_peer() -> bool:
    """The request comes from this host itself, not through a proxy."""
    try:
        loopback = ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False
    return loopback and not any(h in request.headers for h in PROXY_HEADERS)


def install(app: Flask, keys: tuple[str, ...], mode: str, refuse: Refuse) -> None:
    """Guard the patient paths (module docstring); `refuse` renders a 401 in the door's shape."""
    encoded = tuple(k.encode("utf-8") for k in keys)
    open_on_loopback = mode == OPEN_ON_LOOPBACK

    @app.before_request
    def _require_key() -> Response | None:
        path = request.path
        header = request.headers.get("Authorization", "")
        if path.startswith(PROTECTED_PREFIXES):
            if _matches(_bearer(header), encoded) or (open_on_loopback and direct_loopback_peer()):
                return None
            return refuse(401, "send a valid API key as Authorization: Bearer <key>",
                          {"WWW-Authenticate": 'Bearer realm="labinterp"'})
        if path in FORM_PATHS and not direct_loopback_peer() and not _matches(_basic_password(header), encoded):
            return Response("The clinician form needs the service's API key beyond this computer: sign in with any "
                            "user name and the key as the password.\n", 401, mimetype="text/plain",
                            headers={"WWW-Authenticate": 'Basic realm="labinterp", charset="UTF-8"'})
        return None
