"""Parsing result values: numbers and censored strings such as "<150" or ">=2000"."""
from __future__ import annotations

import math
import re

from .vocabulary import COMPARATORS

MAX_VALUE = 1e12  # larger numbers are not measurements in any accepted unit; rejected, not classified
MAX_VALUE_TEXT = 40
# A censored value as text ("<50", ">= 2000", "\u2264 0.5"); the JSON schema quotes the same pattern.
CENSORED_PATTERN = r"^\s*(<=|>=|<|>|\u2264|\u2265)?\s*([0-9]{1,12}(?:\.[0-9]{1,12})?)\s*$"
_CENSORED = re.compile(CENSORED_PATTERN)
# An integer this large is refused before float() could overflow on it (it is far above MAX_VALUE anyway).
HUGE_INTEGER = 10**300
_UNICODE = {"\u2264": "<=", "\u2265": ">="}


class ComparatorError(ValueError):
    """The comparator given beside the value is not one of COMPARATORS (its own field is at fault)."""


def parse_value(value: object, comparator: str | None) -> tuple[float, str | None]:
    """Return (number, comparator or None); raise ValueError with a message meant for the caller
    (ComparatorError when the comparator given beside the value is the problem)."""
    if comparator is not None and comparator not in COMPARATORS:
        raise ComparatorError(f"must be one of {list(COMPARATORS)}")
    if isinstance(value, bool) or value is None:
        raise ValueError("must be a number or a censored value such as \"<50\"")
    if isinstance(value, str):
        if len(value) > MAX_VALUE_TEXT:
            raise ValueError(f"is longer than {MAX_VALUE_TEXT} characters")
        match = _CENSORED.match(value)
        if not match:
            raise ValueError("is not a number or a censored value such as \"<50\" or \">=2000\"")
        sign = _UNICODE.get(match.group(1) or "", match.group(1))
        if comparator is not None:
            raise ValueError("with `comparator`, give the value as a number (a string carries its own sign)")
        number, comparator = float(match.group(2)), sign or comparator
    elif isinstance(value, (int, float)):
        if isinstance(value, int) and abs(value) > HUGE_INTEGER:
            raise ValueError(f"is larger than {MAX_VALUE:g}, which no accepted unit allows")
        number = float(value)
    else:
        raise ValueError("must be a number or a censored value such as \"<50\"")
    if not math.isfinite(number):
        raise ValueError("must be a finite number")
    if number < 0:
        raise ValueError("must not be negative")
    if number > MAX_VALUE:
        raise ValueError(f"is larger than {MAX_VALUE:g}, which no accepted unit allows")
    return number, comparator
