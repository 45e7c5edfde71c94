"""The floor: a minimal Flask app that only parses and echoes the JSON body, under the same gunicorn
settings, so the benchmark can say what the interpretation itself costs next to HTTP and JSON."""
from __future__ import annotations

from flask import Flask, jsonify, request


def create_app() -> Flask:
    app = Flask(__name__)

    @app.post("/v1/interpretations")
    def echo():  # type: ignore[no-untyped-def]
        return jsonify(request.get_json())

    @app.get("/healthz")
    def health():  # type: ignore[no-untyped-def]
        return jsonify({"status": "ok"})

    return app
