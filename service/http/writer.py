"""The one JSON writer of every door: orjson, with the json module for what orjson cannot represent
exactly (integers beyond 64 bits). Flask's own `jsonify` uses it too, as the app's JSON provider."""
from __future__ import annotations

import json
from typing import Any

import orjson
from flask import Response
from flask.json.provider import JSONProvider


def json_bytes(payload: Any) -> bytes:
    try:
        return orjson.dumps(payload)
    except TypeError:  # orjson.JSONEncodeError: a type or an integer it does not take
        return json.dumps(payload, ensure_ascii=False, allow_nan=False).encode()


def json_response(payload: Any, status: int = 200, mimetype: str = "application/json",
                  headers: dict[str, str] | None = None) -> Response:
    return Response(json_bytes(payload), status=status, mimetype=mimetype, headers=headers)


class OrjsonProvider(JSONProvider):
    """Flask's JSON provider interface (flask.json.provider), written by `json_bytes`."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return json_bytes(obj).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return orjson.loads(s)
