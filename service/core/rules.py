"""Note-rule conditions: compiled once from notes.yaml into plain predicates over a panel.

The condition language is documented in reference_ranges/README.md. Compiling at load time means
a typo in a rule stops start-up (naming the rule and key), and requests never parse rule text.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Callable, Mapping, NamedTuple, Sequence

from .model import Context, Patient
from .vocabulary import CONDITIONS, DIETS, MEDICATIONS, SYMPTOMS


class Fact(NamedTuple):
    """What a rule may know of one interpreted result."""

    analyte: str
    band: str
    critical: bool
    exact: bool  # a plausible, uncensored measurement


class Env(NamedTuple):
    """Everything a condition may look at."""

    facts: Sequence[Fact]
    patient: Patient
    context: Context
    collected_at: datetime
    derived: Mapping[str, str] = MappingProxyType({})
    this: Fact | None = None  # the result a result-scope rule is attached to


Predicate = Callable[[Env], bool]


class RuleError(ValueError):
    """A condition is malformed; `field` locates it inside the rule."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


def _str_list(arg: Any, where: str, allowed: Sequence[str] | None = None) -> frozenset[str]:
    if not isinstance(arg, list) or not arg or not all(isinstance(a, str) for a in arg):
        raise RuleError(where, "expected a non-empty list of names")
    if allowed is not None:
        unknown = sorted(set(arg) - set(allowed))
        if unknown:
            raise RuleError(where, f"unknown {unknown}; allowed: {list(allowed)}")
    return frozenset(arg)


def _number(arg: Any, where: str) -> float:
    if isinstance(arg, bool) or not isinstance(arg, (int, float)) or arg < 0:
        raise RuleError(where, "expected a non-negative number")
    return float(arg)


def _true(arg: Any, where: str) -> None:
    if arg is not True:
        raise RuleError(where, "expected `true`")


def _within(moment: datetime | None, days: float, env: Env) -> bool:
    if moment is None:
        return False
    return timedelta(0) <= env.collected_at - moment <= timedelta(days=days)


def compile_condition(
    cond: Any, where: str, *, analytes: Sequence[str], bands: Sequence[str],
    derived: Sequence[str], result_scope: bool,
) -> Predicate:
    """Turn one condition mapping into a predicate; raise RuleError naming the bad key."""
    if not isinstance(cond, dict) or len(cond) != 1:
        raise RuleError(where, "a condition is a mapping with exactly one key")
    (key, arg), = cond.items()
    at = f"{where}.{key}"

    def sub(c: Any, w: str) -> Predicate:
        return compile_condition(c, w, analytes=analytes, bands=bands, derived=derived,
                                 result_scope=result_scope)

    def analyte_name(a: Any, w: str) -> str:
        if a not in analytes:
            raise RuleError(w, f"unknown analyte {a!r}")
        return a

    if key in ("all", "any"):
        if not isinstance(arg, list) or not arg:
            raise RuleError(at, "expected a non-empty list of conditions")
        parts = tuple(sub(c, f"{at}[{i}]") for i, c in enumerate(arg))
        if key == "all":
            def every(env: Env) -> bool:
                for part in parts:
                    if not part(env):
                        return False
                return True
            return every

        def some(env: Env) -> bool:
            for part in parts:
                if part(env):
                    return True
            return False
        return some
    if key == "not":
        inner = sub(arg, at)
        return lambda env: not inner(env)
    if key in ("band_in", "critical"):
        if not result_scope:
            raise RuleError(at, f"`{key}` is for result-scope rules only")
        if key == "critical":
            _true(arg, at)
            return lambda env: env.this is not None and env.this.critical
        chosen = _str_list(arg, at, bands)
        return lambda env: env.this is not None and env.this.band in chosen
    if key in ("result", "any_result"):
        if not isinstance(arg, dict):
            raise RuleError(at, "expected a mapping with `band_in` and the analyte(s)")
        want = _str_list(arg.get("band_in"), f"{at}.band_in", bands)
        if key == "result":
            names = frozenset([analyte_name(arg.get("analyte"), f"{at}.analyte")])
            extra = set(arg) - {"analyte", "band_in"}
        else:
            names = _str_list(arg.get("analytes"), f"{at}.analytes", analytes)
            extra = set(arg) - {"analytes", "band_in"}
        if extra:
            raise RuleError(at, f"unknown keys {sorted(extra)}")
        return lambda env: any(f.analyte in names and f.band in want for f in env.facts)
    if key == "all_results":
        if not isinstance(arg, dict) or set(arg) != {"band_in"}:
            raise RuleError(at, "expected a mapping with `band_in` only")
        want = _str_list(arg["band_in"], f"{at}.band_in", bands)
        return lambda env: bool(env.facts) and all(f.band in want for f in env.facts)
    if key == "has_result":
        name = analyte_name(arg, at)
        return lambda env: any(f.analyte == name and f.exact for f in env.facts)
    if key == "any_critical":
        _true(arg, at)
        return lambda env: any(f.critical for f in env.facts)
    if key in ("symptom_any", "medication_any", "condition_any"):
        vocab, attr = {"symptom_any": (SYMPTOMS, "symptoms"), "medication_any": (MEDICATIONS, "medications"),
                       "condition_any": (CONDITIONS, "conditions")}[key]
        chosen = _str_list(arg, at, vocab)
        return lambda env: bool(chosen & getattr(env.context, attr))
    if key == "diet_in":
        chosen = _str_list(arg, at, DIETS)
        return lambda env: env.context.diet in chosen
    if key in ("age_at_least", "age_below"):
        limit = _number(arg, at)
        if key == "age_at_least":
            return lambda env: env.patient.age_years is not None and env.patient.age_years >= limit
        return lambda env: env.patient.age_years is not None and env.patient.age_years < limit
    if key == "b12_injection_within_days":
        days = _number(arg, at)
        return lambda env: _within(env.context.b12_injection_at, days, env)
    if key == "b12_injection_given":
        _true(arg, at)
        return lambda env: env.context.b12_injection_at is not None
    if key == "b12_therapy_within_days":
        days = _number(arg, at)
        return lambda env: _within(env.context.b12_therapy_started_at, days, env)
    if key == "hemolyzed":
        _true(arg, at)
        return lambda env: env.context.hemolyzed
    if key == "derived":
        if arg not in derived:
            raise RuleError(at, f"unknown derived value {arg!r}; known: {list(derived)}")
        return lambda env: arg in env.derived
    raise RuleError(at, "unknown condition key")


def bands_needed(cond: Any) -> frozenset[str] | None:
    """The bands a result-scope condition can hold for (None: it does not say), so that a result's
    rules can be looked up by its band instead of all being tried. Read from an already-compiled
    condition, so the structure is known to be valid."""
    (key, arg), = cond.items()
    if key == "band_in":
        return frozenset(arg)
    if key == "all":
        known = [b for b in (bands_needed(c) for c in arg) if b is not None]
        return frozenset.intersection(*known) if known else None
    if key == "any":
        parts = [bands_needed(c) for c in arg]
        return None if any(b is None for b in parts) else frozenset().union(*parts)  # type: ignore[arg-type]
    return None
