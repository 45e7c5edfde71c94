"""OpenAPI documentation of problem responses, shared by every blueprint."""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields

from .problem_types import PROBLEM_JSON


class ProblemItemSchema(Schema):
    pointer = fields.String(required=True, metadata={"description": "RFC 6901 JSON pointer into the request body."})
    message = fields.String(required=True)


class ProblemSchema(Schema):
    """RFC 9457 problem details, with every problem of the request located by a JSON pointer."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    errors = fields.List(fields.Nested(ProblemItemSchema), required=True)


DESCRIPTIONS = {
    400: "Malformed request: empty body, invalid or non-UTF-8 JSON, nesting too deep.",
    401: "Missing or wrong API key.",
    404: "No such resource.",
    405: "Method not allowed on this resource.",
    412: "A prefetch the service needs was not sent (CDS Hooks: the service does not fetch).",
    413: "Request body larger than the configured limit.",
    415: "Request body is not JSON.",
    422: "The request is well-formed JSON but its content is invalid; every problem is listed.",
    500: "Unexpected server error (never expected; no detail is revealed).",
}


def problem_responses(*statuses: int) -> dict[str, Any]:
    """The OpenAPI responses of these problem+json statuses."""
    return {str(status): {"description": DESCRIPTIONS[status],
                          "content": {PROBLEM_JSON: {"schema": ProblemSchema}}} for status in statuses}
