"""What a knowledge change does to real panels: `labinterp diff-knowledge OLD_DIR NEW_DIR FILE`.

Every panel of FILE (read as `labinterp interpret` reads it) is interpreted with both folders. Per
analyte: how many results change band, critical or implausible status; which notes appear or
disappear; a few examples. What a laboratory director needs before switching ranges: the numbers of
results that would be reported differently, and how.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Any
from collections.abc import Iterable

from ..core.knowledge import Knowledge
from ..panels import Panels, outcome_document


@dataclass
class AnalyteDiff:
    results: int = 0
    band_changed: int = 0
    transitions: Counter = field(default_factory=Counter)  # "old band->new band" -> results
    became_critical: int = 0
    no_longer_critical: int = 0
    became_implausible: int = 0
    no_longer_implausible: int = 0
    notes_appearing: Counter = field(default_factory=Counter)
    notes_disappearing: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)


@dataclass
class KnowledgeDiff:
    old_version: str
    new_version: str
    panels: int = 0
    both: int = 0
    refused_by_old: int = 0
    refused_by_new: int = 0
    refused_by_both: int = 0
    analytes: dict[str, AnalyteDiff] = field(default_factory=dict)
    panel_notes_appearing: Counter = field(default_factory=Counter)
    panel_notes_disappearing: Counter = field(default_factory=Counter)


def as_json(d: KnowledgeDiff) -> dict[str, Any]:
    """The diff as plain JSON values (counters as mappings, most frequent first)."""
    def plain(obj: Any) -> Any:
        if isinstance(obj, Counter):
            return dict(obj.most_common())
        if isinstance(obj, (AnalyteDiff, KnowledgeDiff)):
            return {f.name: plain(getattr(obj, f.name)) for f in fields(obj)}
        if isinstance(obj, dict):
            return {k: plain(v) for k, v in sorted(obj.items())}
        return obj
    return plain(d)


def _example(index: int, old: dict[str, Any], new: dict[str, Any]) -> str:
    def standing(r: dict[str, Any]) -> str:
        marks = [m for m in ("critical", "implausible") if r.get(m)]
        return r["band"] + (f" ({', '.join(marks)})" if marks else "")
    return f"panel {index} result {new['id']}: {new['value']} {new['unit']}: {standing(old)} -> {standing(new)}"


def _compare_results(d: KnowledgeDiff, index: int, old: dict[str, Any], new: dict[str, Any], examples: int) -> None:
    a = d.analytes.setdefault(new["analyte"], AnalyteDiff())
    a.results += 1
    changed = False
    if old["band"] != new["band"]:
        a.band_changed += 1
        a.transitions[f"{old['band']}->{new['band']}"] += 1
        changed = True
    for key, up, down in (("critical", "became_critical", "no_longer_critical"),
                          ("implausible", "became_implausible", "no_longer_implausible")):
        was, now = bool(old.get(key)), bool(new.get(key))
        if was != now:
            setattr(a, up if now else down, getattr(a, up if now else down) + 1)
            changed = True
    before, after = {n["id"] for n in old["notes"]}, {n["id"] for n in new["notes"]}
    a.notes_appearing.update(after - before)
    a.notes_disappearing.update(before - after)
    if changed and len(a.examples) < examples:
        a.examples.append(_example(index, old, new))


def compare(panels: Iterable[Any], old: Panels, new: Panels, old_kb: Knowledge, new_kb: Knowledge,
            examples: int = 3) -> KnowledgeDiff:
    """`old` and `new` interpret one panel body each (the application layer of each folder)."""
    d = KnowledgeDiff(old_kb.version, new_kb.version)
    for index, body in enumerate(panels):
        d.panels += 1
        before, after = outcome_document(index, old.interpret(body)), outcome_document(index, new.interpret(body))
        ok_before, ok_after = before["status"] == 200, after["status"] == 200
        if not (ok_before and ok_after):
            d.refused_by_both += not ok_before and not ok_after
            d.refused_by_old += not ok_before and ok_after
            d.refused_by_new += ok_before and not ok_after
            continue
        d.both += 1
        for r_old, r_new in zip(before["report"]["results"], after["report"]["results"], strict=True):
            _compare_results(d, index, r_old, r_new, examples)
        was = {n["id"] for n in before["report"]["notes"]}
        now = {n["id"] for n in after["report"]["notes"]}
        d.panel_notes_appearing.update(now - was)
        d.panel_notes_disappearing.update(was - now)
    return d


def _counts(counter: Counter, sign: str, limit: int = 12) -> str:
    return ", ".join(f"{k} {sign}{n}" for k, n in counter.most_common(limit)) or "none"


def summary(d: KnowledgeDiff) -> str:
    """The diff as text: one block per analyte, then the panel notes."""
    lines = [f"knowledge {d.old_version} -> {d.new_version}: {d.panels} panels; interpreted by both {d.both}; "
             f"refused by the old only {d.refused_by_old}, by the new only {d.refused_by_new}, by both {d.refused_by_both}",
             "", f"{'analyte':<18}{'results':>8}{'band':>7}{'+crit':>7}{'-crit':>7}{'+impl':>7}{'-impl':>7}"]
    for name, a in sorted(d.analytes.items()):
        lines.append(f"{name:<18}{a.results:>8}{a.band_changed:>7}{a.became_critical:>7}{a.no_longer_critical:>7}"
                     f"{a.became_implausible:>7}{a.no_longer_implausible:>7}")
    for name, a in sorted(d.analytes.items()):
        lines += ["", f"{name}:",
                  "  band changes: " + (", ".join(f"{t} {c}" for t, c in a.transitions.most_common(8)) or "none"),
                  "  notes appearing: " + _counts(a.notes_appearing, "+"),
                  "  notes disappearing: " + _counts(a.notes_disappearing, "-"),
                  *(f"  e.g. {e}" for e in a.examples)]
    lines += ["", "panel notes appearing: " + _counts(d.panel_notes_appearing, "+", 30),
              "panel notes disappearing: " + _counts(d.panel_notes_disappearing, "-", 30)]
    return "\n".join(lines)
