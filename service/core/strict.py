"""The base of every marshmallow schema of the project: unknown fields are refused, never ignored."""
from __future__ import annotations

from marshmallow import RAISE, Schema


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE
