"""`labinterp diff-knowledge` and `labinterp synth-panels`: what a knowledge change does to panels."""
from __future__ import annotations

import json
import subprocess
import sys

from service.cli import main
from service.core import load_knowledge
from service.tools.synthetic import synthetic_panels

from . import core_helpers as h

RANGES = h.RANGES


def test_synthetic_panels_are_deterministic_and_span_every_band_and_term(tmp_path):
    kb = load_knowledge(RANGES)
    one = list(synthetic_panels([kb], 1500, seed=7))
    assert one == list(synthetic_panels([kb], 1500, seed=7)) != list(synthetic_panels([kb], 1500, seed=8))
    from service.config import Settings
    from service.panels import Panels, outcome_document

    panels = Panels(kb, Settings().panel_limits())
    seen: dict[str, set[str]] = {}
    terms: set[str] = set()
    for i, panel in enumerate(one):
        out = outcome_document(i, panels.interpret(panel))
        assert out["status"] == 200, out  # every panel is one the service accepts
        for r in out["report"]["results"]:
            seen.setdefault(r["analyte"], set()).add(r["band"])
        ctx = panel.get("context", {})
        terms.update(*(ctx.get(k, []) for k in ("medications", "symptoms", "conditions")), [ctx.get("diet")])
    for analyte, a in kb.analytes.items():
        assert set(a.bands.order()) <= seen[analyte], (analyte, set(a.bands.order()) - seen[analyte])
    every = {t for kind in ("medications", "symptoms", "conditions", "diet") for t in kb.vocabulary.ids(kind)}
    assert every <= terms


def test_the_diff_counts_what_changes_between_two_folders(tmp_path, capsys):
    """Switching calcium to Augusta's >= 13.0 limit: 12.5 mg/dL stops being critical, 6.5 stays, and
    the diff says so, with the notes that go."""
    new = h.copy_ranges(tmp_path, "augusta")
    h.edit_yaml(new, "calcium.yaml", lambda d: d.__setitem__("critical_use", "augusta"))
    panels = tmp_path / "panels.jsonl"
    rows = [{"results": [{"id": "ca", "analyte": "calcium", "value": v, "unit": "mg/dL"}]} for v in (12.5, 6.5, 9.5)]
    panels.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    assert main(["diff-knowledge", str(RANGES), str(new), str(panels), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    ca = d["analytes"]["calcium"]
    assert (d["panels"], d["both"], ca["results"], ca["band_changed"]) == (3, 3, 3, 1)
    assert (ca["no_longer_critical"], ca["became_critical"]) == (1, 0)
    assert ca["notes_disappearing"] == {"calcium-critical": 1}
    assert main(["diff-knowledge", str(RANGES), str(new), str(panels)]) == 0
    text = capsys.readouterr().out
    assert "critical_high->high 1" in text and "calcium-critical -1" in text


def test_synth_panels_command_writes_json_lines():
    out = subprocess.run([sys.executable, "-m", "service.cli", "synth-panels", "--count", "5", "--seed", "3"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(out) == 5 and all(json.loads(line)["results"] for line in out)
