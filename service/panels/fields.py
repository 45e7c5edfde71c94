"""Strict marshmallow fields: JSON types are not coerced ("30" is not a number, "yes" not a boolean)."""
from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

from marshmallow import ValidationError, fields

from ..core.values import HUGE_INTEGER

# Control characters (C0, DEL, C1, the line and paragraph separators): in a regex and, as the same
# text, in the contract's pattern.
CONTROL_CHARACTERS = r"\x00-\x1f\x7f-\x9f\u2028\u2029"
_CONTROL = re.compile(f"[{CONTROL_CHARACTERS}]")


class StrictFloat(fields.Float):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError("Not a valid number.")
        if isinstance(value, int) and abs(value) > HUGE_INTEGER:
            raise ValidationError("Number too large.")
        number = float(value)
        if not math.isfinite(number):
            raise ValidationError("Must be a finite number.")
        return number


class StrictBoolean(fields.Boolean):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise ValidationError("Not a valid boolean.")
        return value


NO_CONTROL_PATTERN = f"^[^{CONTROL_CHARACTERS}]*$"


class Text(fields.String):
    """A string without control characters (they have no place in ids, units or names)."""

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("metadata", {}).setdefault("pattern", NO_CONTROL_PATTERN)
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str):  # JSON text is str; marshmallow's String also takes bytes, JSON has none
            raise self.make_error("invalid")
        if _CONTROL.search(value):
            raise ValidationError("Must not contain control characters.")
        return value


class NumberOrCensored(fields.Field):
    """A result value: a JSON number, or a string such as "<50"; the core checks the content."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float | int | str:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValidationError("Must be a number or a censored value such as \"<50\".")
        return value


# RFC 3339 date-times as the JSON panel carries them: the common spellings, which datetime.fromisoformat
# reads exactly as marshmallow would; anything else is left to marshmallow's own parser (and messages).
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$")


_AWARE = fields.AwareDateTime()  # marshmallow's own reading, through its public `deserialize`


class Rfc3339(fields.AwareDateTime):
    """An aware date-time; the usual spellings are read by datetime.fromisoformat (the JSON panel holds
    up to a hundred and twenty of them), the rest by marshmallow's AwareDateTime."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if isinstance(value, str) and _RFC3339.match(value):
            try:
                return datetime.fromisoformat(value)
            except ValueError:  # a day or an hour that does not exist: marshmallow says so in its words
                pass
        moment: datetime = _AWARE.deserialize(value)
        return moment
