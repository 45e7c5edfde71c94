"""The clinical cases: loading them, and checking a report against what a case expects.

    python -m tests.clinical_cases.check http://127.0.0.1:8000 [API_KEY]

runs every case against a running labinterp (its own knowledge, whatever folder it was started with)
and prints the failures; tests/test_clinical_cases.py runs them in process in `make test`.
"""
from __future__ import annotations

import json
import math
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import yaml

HERE = Path(__file__).resolve().parent
DEFAULT_COLLECTED_AT = "2026-11-20T08:00:00Z"
RESULT_FIELDS = ("band", "flag", "critical", "implausible")
# A report rounds its numbers (a change of 1.4 may come back as 1.4000000000000004, or rounded to two
# decimals): expected numbers match within this.
NUMBER_TOLERANCE = 0.011


def load_cases(directory: Path = HERE) -> list[dict[str, Any]]:
    cases = []
    for path in sorted(directory.glob("*.yaml")):
        for case in yaml.safe_load(path.read_text(encoding="utf-8"))["cases"]:
            cases.append({**case, "file": path.name})
    return cases


def request_body(case: dict[str, Any]) -> dict[str, Any]:
    """The case's panel as POST /v1/interpretations takes it (a fixed collection time by default)."""
    return {"collected_at": DEFAULT_COLLECTED_AT, **case["panel"]}


def _notes_failures(where: str, notes: list[dict[str, Any]], expect: dict[str, Any]) -> Iterator[str]:
    given = {n["id"]: n for n in notes}
    for note_id in expect.get("notes", []):
        if note_id not in given:
            yield f"{where}: note {note_id} missing (got {sorted(given)})"
    for note_id in expect.get("not_notes", []):
        if note_id in given:
            yield f"{where}: note {note_id} must not be given"
    for note_id, words in (expect.get("texts") or {}).items():
        text = given.get(note_id, {}).get("text", "")
        for word in words.get("contains", []):
            if word.lower() not in text.lower():
                yield f"{where}: note {note_id} should say {word!r}"
        for word in words.get("excludes", []):
            if word.lower() in text.lower():
                yield f"{where}: note {note_id} must not say {word!r}"


def _fields_failures(where: str, wanted: dict[str, Any] | None, got: dict[str, Any] | None) -> list[str]:
    """`wanted: null` means the thing must be absent; otherwise each field it names must match."""
    if wanted is None:
        return [] if got is None else [f"{where}: expected none, got {got!r}"]
    if got is None:
        return [f"{where}: missing"]
    return [f"{where}.{k}: expected {v!r}, got {got.get(k)!r}" for k, v in wanted.items() if got.get(k) != v]


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _mismatches(where: str, wanted: Any, got: Any) -> list[str]:
    """Each field `wanted` names must match in `got`: numbers within NUMBER_TOLERANCE, mappings field by
    field (`previous: {value: 4.4}` checks only the value), everything else (null, booleans, ids) exactly."""
    if isinstance(wanted, dict):
        if not isinstance(got, dict):
            return [f"{where}: expected {wanted!r}, got {got!r}"]
        return [m for k, v in wanted.items() for m in _mismatches(f"{where}.{k}", v, got.get(k))]
    if _is_number(wanted) and _is_number(got):
        same = math.isclose(wanted, got, rel_tol=0, abs_tol=NUMBER_TOLERANCE)
    else:
        same = type(wanted) is type(got) and wanted == got
    return [] if same else [f"{where}: expected {wanted!r}, got {got!r}"]


def _delta_failures(where: str, wanted: dict[str, Any] | None, result: dict[str, Any] | None) -> list[str]:
    """A result's `delta` (issue 15): every result of a report carries one, null when there is no earlier
    result of its analyte; `delta: null` requires null, otherwise each field given must match."""
    if result is None:
        return [f"{where}: result missing"]
    if "delta" not in result:
        return [f"{where}: the report gives no delta"]
    got = result["delta"]
    if wanted is None:
        return [] if got is None else [f"{where}: expected null, got {got!r}"]
    if got is None:
        return [f"{where}: expected a delta, got null"]
    return _mismatches(where, wanted, got)


def _trend_failures(where: str, length: int, result: dict[str, Any]) -> list[str]:
    trend = result.get("trend")
    if not isinstance(trend, list):
        return [f"{where}: expected a trend of {length} points, got {trend!r}"]
    return [] if len(trend) == length else [f"{where}: expected {length} points, got {len(trend)}"]


def failures(case: dict[str, Any], report: dict[str, Any]) -> list[str]:
    """What in the report differs from what the case expects (an empty list: the case holds)."""
    expect = case["expect"]
    out: list[str] = []
    results = {r["id"]: r for r in report.get("results", [])}
    for rid, wanted in (expect.get("results") or {}).items():
        got = results.get(rid)
        if got is None:
            out.append(f"result {rid} missing")
            continue
        for key in RESULT_FIELDS:
            if key in wanted and got.get(key) != wanted[key]:
                out.append(f"{rid}.{key}: expected {wanted[key]!r}, got {got.get(key)!r}")
        out += _notes_failures(rid, got.get("notes", []), wanted)
        if "delta" in wanted:
            out += _delta_failures(f"{rid}.delta", wanted["delta"], got)
        if "trend_length" in wanted:
            out += _trend_failures(f"{rid}.trend", wanted["trend_length"], got)
    out += _notes_failures("panel", report.get("notes", []), expect)
    derived = {d["id"]: d for d in report.get("derived", [])}
    for name, wanted in (expect.get("derived") or {}).items():
        out += _fields_failures(f"derived {name}", wanted, derived.get(name))
    for rid, wanted in (expect.get("delta") or {}).items():  # the same, keyed by result id
        out += _delta_failures(f"{rid}.delta", wanted, results.get(rid))
    return out


def _post(url: str, key: str | None, body: dict[str, Any]) -> dict[str, Any]:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    req = urllib.request.Request(url.rstrip("/") + "/v1/interpretations", json.dumps(body).encode(), headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as exc:
        return {"error": exc.code, "detail": exc.read().decode("utf-8", "replace")[:300]}


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    url, key = argv[0], (argv[1] if len(argv) > 1 else None)
    cases, failed = load_cases(), 0
    for case in cases:
        report = _post(url, key, request_body(case))
        problems = [f"HTTP {report['error']}: {report['detail']}"] if "error" in report else failures(case, report)
        if problems:
            failed += 1
            print(f"FAIL {case['file']}:{case['id']}\n  " + "\n  ".join(problems))
    print(f"{len(cases) - failed} of {len(cases)} clinical cases hold")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
