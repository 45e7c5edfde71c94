"""Note-rule conditions: compiled once from notes.yaml into plain predicates over a panel.

The condition language is documented in reference_ranges/README.md. Each key has one small compiler
in CONDITIONS; compiling at load time means a typo in a rule stops start-up (naming the rule and the
key), and requests never parse rule text.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple
from collections.abc import Callable, Mapping, Sequence

from .deltas import elapsed
from .model import Context, Patient
from .report import DerivedValue
from .vocabulary import Vocabulary

if TYPE_CHECKING:
    from .history import Delta


class Fact(NamedTuple):
    """What a rule may know of one interpreted result."""

    analyte: str
    band: str
    critical: bool
    exact: bool  # a plausible, uncensored measurement
    implausible: bool = False
    flag: str | None = None
    value: float = 0.0  # canonical unit
    comparator: str | None = None
    delta: Delta | None = None  # the change from the newest earlier result of the analyte


class Env(NamedTuple):
    """Everything a condition may look at."""

    facts: Sequence[Fact]
    patient: Patient
    context: Context
    collected_at: datetime
    derived: Mapping[str, DerivedValue] = MappingProxyType({})
    this: Fact | None = None  # the result a result-scope rule is attached to


Predicate = Callable[[Env], bool]


class RuleError(ValueError):
    """A condition is malformed; `field` locates it inside the rule."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


class RuleScope(NamedTuple):
    """What a condition may name: analytes, the bands of the rule's analyte (or of all), derived values,
    the vocabulary; and whether the rule is attached to a result."""

    analytes: tuple[str, ...]
    bands: tuple[str, ...]
    derived: tuple[str, ...]
    result_scope: bool
    vocabulary: Vocabulary
    bands_of: Mapping[str, tuple[str, ...]]  # analyte -> its bands (derived values use their analyte's)


Compiler = Callable[[Any, str, RuleScope], Predicate]


def compile_condition(cond: Any, where: str, scope: RuleScope) -> Predicate:
    """Turn one condition mapping into a predicate; raise RuleError naming the bad key."""
    if not isinstance(cond, dict) or len(cond) != 1:
        raise RuleError(where, "a condition is a mapping with exactly one key")
    (key, arg), = cond.items()
    compiler = CONDITIONS.get(key)
    if compiler is None:
        raise RuleError(f"{where}.{key}", f"unknown condition key; known: {sorted(CONDITIONS)}")
    return compiler(arg, f"{where}.{key}", scope)


# ------------------------------------------------------------------ argument checks

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


def _analyte_name(a: Any, where: str, scope: RuleScope) -> str:
    if a not in scope.analytes:
        raise RuleError(where, f"unknown analyte {a!r}")
    return str(a)


def _result_only(where: str, scope: RuleScope) -> None:
    if not scope.result_scope:
        raise RuleError(where, f"`{where.rsplit('.', 1)[-1]}` is for result-scope rules only")


def _mapping(arg: Any, where: str, keys: set[str]) -> dict[str, Any]:
    if not isinstance(arg, dict) or set(arg) - keys or not arg:
        raise RuleError(where, f"expected a mapping with {sorted(keys)}")
    return arg


# ------------------------------------------------------------------ combinations

def _all(arg: Any, at: str, scope: RuleScope) -> Predicate:
    parts = _parts(arg, at, scope)

    def every(env: Env) -> bool:
        return all(part(env) for part in parts)
    return every


def _any(arg: Any, at: str, scope: RuleScope) -> Predicate:
    parts = _parts(arg, at, scope)

    def some(env: Env) -> bool:
        return any(part(env) for part in parts)
    return some


def _parts(arg: Any, at: str, scope: RuleScope) -> tuple[Predicate, ...]:
    if not isinstance(arg, list) or not arg:
        raise RuleError(at, "expected a non-empty list of conditions")
    return tuple(compile_condition(c, f"{at}[{i}]", scope) for i, c in enumerate(arg))


def _not(arg: Any, at: str, scope: RuleScope) -> Predicate:
    inner = compile_condition(arg, at, scope)
    return lambda env: not inner(env)


# ------------------------------------------------------------------ this result

def _band_in(arg: Any, at: str, scope: RuleScope) -> Predicate:
    _result_only(at, scope)
    chosen = _str_list(arg, at, scope.bands)
    return lambda env: env.this is not None and env.this.band in chosen


def _critical(arg: Any, at: str, scope: RuleScope) -> Predicate:
    _result_only(at, scope)
    _true(arg, at)
    return lambda env: env.this is not None and env.this.critical


def _implausible(arg: Any, at: str, scope: RuleScope) -> Predicate:
    _result_only(at, scope)
    _true(arg, at)
    return lambda env: env.this is not None and env.this.implausible


# ------------------------------------------------------------------ the panel's results

def _result(arg: Any, at: str, scope: RuleScope) -> Predicate:
    arg = _mapping(arg, at, {"analyte", "band_in"})
    name = _analyte_name(arg.get("analyte"), f"{at}.analyte", scope)
    want = _str_list(arg.get("band_in"), f"{at}.band_in", scope.bands_of[name])
    return lambda env: any(f.analyte == name and f.band in want for f in env.facts)


def _any_result(arg: Any, at: str, scope: RuleScope) -> Predicate:
    arg = _mapping(arg, at, {"analytes", "band_in"})
    names = _str_list(arg.get("analytes"), f"{at}.analytes", scope.analytes)
    allowed = sorted({b for n in names for b in scope.bands_of[n]})
    want = _str_list(arg.get("band_in"), f"{at}.band_in", allowed)
    return lambda env: any(f.analyte in names and f.band in want for f in env.facts)


def _all_results(arg: Any, at: str, scope: RuleScope) -> Predicate:
    arg = _mapping(arg, at, {"band_in"})
    want = _str_list(arg.get("band_in"), f"{at}.band_in", sorted({b for v in scope.bands_of.values() for b in v}))
    return lambda env: bool(env.facts) and all(f.band in want for f in env.facts)


def _has_result(arg: Any, at: str, scope: RuleScope) -> Predicate:
    name = _analyte_name(arg, at, scope)
    return lambda env: any(f.analyte == name and f.exact for f in env.facts)


def _any_critical(arg: Any, at: str, scope: RuleScope) -> Predicate:
    _true(arg, at)
    return lambda env: any(f.critical for f in env.facts)


def _derived(arg: Any, at: str, scope: RuleScope) -> Predicate:
    if arg not in scope.derived:
        raise RuleError(at, f"unknown derived value {arg!r}; known: {list(scope.derived)}")
    return lambda env: arg in env.derived


def _derived_band(arg: Any, at: str, scope: RuleScope) -> Predicate:
    """A derived value was computed and its own classification is one of these bands."""
    arg = _mapping(arg, at, {"value", "band_in"})
    name = arg.get("value")
    if name not in scope.derived:
        raise RuleError(f"{at}.value", f"unknown derived value {name!r}; known: {list(scope.derived)}")
    want = _str_list(arg.get("band_in"), f"{at}.band_in", sorted({b for v in scope.bands_of.values() for b in v}))

    def test(env: Env) -> bool:
        value = env.derived.get(name)
        return value is not None and value.band in want
    return test


# ------------------------------------------------------------------ the patient and the context

def _vocabulary_any(kind: str) -> Compiler:
    def compiler(arg: Any, at: str, scope: RuleScope) -> Predicate:
        chosen = _str_list(arg, at, scope.vocabulary.ids(kind))
        return lambda env: bool(chosen & getattr(env.context, kind))
    return compiler


def _diet_in(arg: Any, at: str, scope: RuleScope) -> Predicate:
    chosen = _str_list(arg, at, scope.vocabulary.ids("diet"))
    return lambda env: env.context.diet in chosen


def _age_at_least(arg: Any, at: str, scope: RuleScope) -> Predicate:
    limit = _number(arg, at)
    return lambda env: env.patient.age_years is not None and env.patient.age_years >= limit


def _age_below(arg: Any, at: str, scope: RuleScope) -> Predicate:
    limit = _number(arg, at)
    return lambda env: env.patient.age_years is not None and env.patient.age_years < limit


def _within(moment: datetime | None, days: float, env: Env) -> bool:
    """At most `days` before collection, and not after it."""
    if moment is None:
        return False
    return timedelta(0) <= env.collected_at - moment <= timedelta(days=days)


def _within_days_of(attr: str) -> Compiler:
    """`<attr>` (a time of the context) lies at most N days before collection, and not after it."""
    def compiler(arg: Any, at: str, scope: RuleScope) -> Predicate:
        days = _number(arg, at)
        return lambda env: _within(getattr(env.context, attr), days, env)
    return compiler


def _recorded(attr: str) -> Compiler:
    """`<attr>` (a time of the context) is recorded at all."""
    def compiler(arg: Any, at: str, scope: RuleScope) -> Predicate:
        _true(arg, at)
        return lambda env: getattr(env.context, attr) is not None
    return compiler


# ------------------------------------------------------------------ history (core/history.py)

DIRECTIONS = ("rise", "fall", "any")


def _delta_test(arg: Any, at: str) -> Callable[[Delta | None], bool]:
    """{significant, direction, at_least}: what a delta must show (each key optional)."""
    significant = arg.get("significant")
    if significant is not None and not isinstance(significant, bool):
        raise RuleError(f"{at}.significant", "expected true or false")
    direction = arg.get("direction", "any")
    if direction not in DIRECTIONS:
        raise RuleError(f"{at}.direction", f"expected one of {list(DIRECTIONS)}")
    at_least = _number(arg["at_least"], f"{at}.at_least") if "at_least" in arg else None

    def test(d: Delta | None) -> bool:
        if d is None or d.change is None:
            return False
        if significant is not None and d.significant != significant:
            return False
        if direction != "any" and d.direction != direction:
            return False
        return at_least is None or abs(d.change) >= at_least
    return test


def _delta(arg: Any, at: str, scope: RuleScope) -> Predicate:
    """A result's change from its previous result: this result's (result scope), or any result's of
    `analyte` (which a panel-scope rule must name)."""
    arg = _mapping(arg, at, {"analyte", "significant", "direction", "at_least"})
    test = _delta_test(arg, at)
    if "analyte" in arg:
        name = _analyte_name(arg["analyte"], f"{at}.analyte", scope)
        return lambda env: any(f.analyte == name and test(f.delta) for f in env.facts)
    _result_only(at, scope)
    return lambda env: env.this is not None and test(env.this.delta)


def _has_previous(arg: Any, at: str, scope: RuleScope) -> Predicate:
    _result_only(at, scope)
    _true(arg, at)
    return lambda env: env.this is not None and env.this.delta is not None


def _previous_critical(arg: Any, at: str, scope: RuleScope) -> Predicate:
    """The previous result was beyond the same critical limit as this one."""
    _result_only(at, scope)
    _true(arg, at)
    return lambda env: (env.this is not None and env.this.delta is not None and env.this.critical
                        and env.this.delta.previous_critical == env.this.flag)


def _b12_therapy_at_least_days(arg: Any, at: str, scope: RuleScope) -> Predicate:
    days = _number(arg, at)

    def test(env: Env) -> bool:
        start = env.context.b12_therapy_started_at
        return start is not None and env.collected_at - start >= timedelta(days=days)
    return test


def _previous_against(attr: str, holds: Callable[[timedelta, timedelta], bool]) -> Compiler:
    """A result-scope test of this result's previous one against a time of the context: `holds(previous
    minus that time, N days)`; false when either is unknown."""
    def compiler(arg: Any, at: str, scope: RuleScope) -> Predicate:
        _result_only(at, scope)
        days = timedelta(days=_number(arg, at))

        def test(env: Env) -> bool:
            moment, d = getattr(env.context, attr), env.this.delta if env.this else None
            return moment is not None and d is not None and holds(d.previous.collected_at - moment, days)
        return test
    return compiler


# The previous result was taken before replacement began, or at most N days after.
_previous_by_therapy_start_plus_days = _previous_against("b12_therapy_started_at", lambda gap, days: gap <= days)
# A B12 injection lies at most N days before the previous result (and not after it).
_b12_injection_within_days_before_previous = _previous_against(
    "b12_injection_at", lambda gap, days: timedelta(0) <= gap <= days)


def _hemolyzed(arg: Any, at: str, scope: RuleScope) -> Predicate:
    _true(arg, at)
    return lambda env: env.context.hemolyzed


CONDITIONS: Mapping[str, Compiler] = MappingProxyType({
    "all": _all, "any": _any, "not": _not,
    "band_in": _band_in, "critical": _critical, "implausible": _implausible,
    "result": _result, "any_result": _any_result, "all_results": _all_results, "has_result": _has_result,
    "any_critical": _any_critical, "derived": _derived, "derived_band": _derived_band,
    "symptom_any": _vocabulary_any("symptoms"), "medication_any": _vocabulary_any("medications"),
    "condition_any": _vocabulary_any("conditions"), "diet_in": _diet_in,
    "age_at_least": _age_at_least, "age_below": _age_below,
    "b12_injection_within_days": _within_days_of("b12_injection_at"), "b12_injection_given": _recorded("b12_injection_at"),
    "b12_therapy_within_days": _within_days_of("b12_therapy_started_at"),
    "b12_therapy_given": _recorded("b12_therapy_started_at"),
    "hemolyzed": _hemolyzed,
    "delta": _delta, "has_previous": _has_previous, "previous_critical": _previous_critical,
    "b12_therapy_at_least_days": _b12_therapy_at_least_days,
    "previous_by_therapy_start_plus_days": _previous_by_therapy_start_plus_days,
    "b12_injection_within_days_before_previous": _b12_injection_within_days_before_previous,
})


# ------------------------------------------------------------------ placeholders in note texts

def _days_since(moment: datetime | None, env: Env) -> str | None:
    if moment is None or moment > env.collected_at:
        return None
    return elapsed((env.collected_at - moment).total_seconds() / 3600)


def _delta_text(fact: Fact | None) -> str | None:
    if fact is None or fact.delta is None:
        return None
    return fact.delta.text(fact.value, fact.comparator)


def _delta_limit(env: Env) -> str | None:
    d = env.this.delta if env.this is not None else None
    return None if d is None or d.rule is None else d.rule.limit_text(d.unit)


ANALYTE_DELTA = "_delta"  # `{potassium_delta}`: the change of the panel's potassium result, as `{delta}` says it


def placeholder_text(name: str, env: Env) -> str | None:
    """A placeholder's text for this panel: one of PLACEHOLDERS, `<analyte>_delta`, or a derived value's
    id (its text); None when unknown, and a rule that needs it does not fire."""
    text = PLACEHOLDERS.get(name)
    if text is not None:
        return text(env)
    if name.endswith(ANALYTE_DELTA):
        analyte = name[: -len(ANALYTE_DELTA)]
        return next((t for f in env.facts if f.analyte == analyte and (t := _delta_text(f)) is not None), None)
    value = env.derived.get(name)
    return None if value is None else value.text


# name -> its text for this panel (None: unknown, and a rule that needs it does not fire).
PLACEHOLDERS: Mapping[str, Callable[[Env], str | None]] = MappingProxyType({
    "b12_therapy_elapsed": lambda env: _days_since(env.context.b12_therapy_started_at, env),
    "b12_injection_elapsed": lambda env: _days_since(env.context.b12_injection_at, env),
    "delta": lambda env: _delta_text(env.this),
    "delta_limit": _delta_limit,
    "previous_elapsed": lambda env: None if env.this is None or env.this.delta is None else elapsed(env.this.delta.hours),
})


PREVIOUS_KEYS = frozenset({"delta", "has_previous", "previous_critical", "previous_by_therapy_start_plus_days",
                           "b12_injection_within_days_before_previous"})


def needs_previous(cond: Any) -> bool:
    """Whether a condition cannot hold without an earlier result (a delta), so that rules about change
    are not tried for panels sent without history. Read from a compiled condition."""
    (key, arg), = cond.items()
    if key in PREVIOUS_KEYS:
        return True
    if key == "all":
        return any(needs_previous(c) for c in arg)
    if key == "any":
        return all(needs_previous(c) for c in arg)
    return False


def analytes_needed(cond: Any) -> frozenset[str]:
    """The analytes a condition cannot hold without (a result of each in the panel), so that a panel's
    rules can be skipped when one is missing instead of being tried. Read from a compiled condition."""
    (key, arg), = cond.items()
    if key in ("result", "any_result"):
        return frozenset((arg["analyte"],)) if key == "result" else frozenset()
    if key == "has_result":
        return frozenset((arg,))
    if key == "all":
        return frozenset().union(*(analytes_needed(c) for c in arg))
    if key == "any":
        return frozenset.intersection(*(analytes_needed(c) for c in arg))
    return frozenset()


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
