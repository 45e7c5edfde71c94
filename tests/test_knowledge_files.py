"""Knowledge-folder validation: a broken file stops loading with a message naming file and field.

Each case copies reference_ranges/ to tmp_path, breaks one thing, and expects KnowledgeError whose
text names the file and the field. LABINTERP_RANGES_DIR selects a laboratory's own copy.
"""
from __future__ import annotations

import pytest

from service.config import Settings
import yaml

from service.core import KnowledgeError, load_knowledge

try:
    import core_helpers as h
except ImportError:  # pragma: no cover
    from tests import core_helpers as h

RANGES = h.RANGES


def _set(path: str, value):
    """A change that sets a dotted path (list indexes as integers) to value."""
    def change(data):
        keys = [int(k) if k.isdigit() else k for k in path.split(".")]
        node = data
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    return change


def _note_index(note_id: str) -> int:
    return [n["id"] for n in h.raw_notes()].index(note_id)


def _dup_note(data):
    data["notes"].append(dict(data["notes"][0]))


def _append_alias(alias):
    def change(data):
        data["aliases"].append(alias)
    return change


def _add_unit(unit):
    def change(data):
        data["units"].append(unit)
    return change


def _write(name: str, text: str):
    def act(d):
        (d / name).write_text(text, encoding="utf-8")
    return act


def _delete(name: str):
    def act(d):
        (d / name).unlink()
    return act


def _edit(name: str, change):
    def act(d):
        h.edit_yaml(d, name, change)
    return act


def _rename(src: str, dst: str):
    def act(d):
        (d / src).rename(d / dst)
    return act


def _spelling_clash(data):
    data["units"][1]["spellings"].append(data["units"][0]["id"])


def _mislabel_kind(data):
    for u in data["units"]:
        if u["id"] == "mmol/L":
            u["kind"] = "mass_concentration"


def _pop(path: str):
    def change(data):
        keys = [int(k) if k.isdigit() else k for k in path.split(".")]
        node = data
        for k in keys[:-1]:
            node = node[k]
        node.pop(keys[-1])
    return change


# (case id, how to break the copy, the file the message must name, text(s) the message must contain)
CASES = [
    # Format 2: boundaries, titles, rationales and the vocabulary are stated, never assumed.
    ("critical limit without its boundary", _edit("calcium.yaml", _pop("critical.high_inclusive")),
     "calcium.yaml", ["critical.high_inclusive"]),
    ("implausible limit without its boundary", _edit("potassium.yaml", _pop("implausible.low_inclusive")),
     "potassium.yaml", ["implausible.low_inclusive"]),
    ("critical alternative without its boundary", _edit("calcium.yaml", _pop("critical_alternatives.0.low_inclusive")),
     "calcium.yaml", ["critical_alternatives[0].low_inclusive"]),
    ("critical alternative without an id", _edit("calcium.yaml", _pop("critical_alternatives.0.id")),
     "calcium.yaml", ["critical_alternatives[0].id"]),
    ("critical_use naming no alternative", _edit("calcium.yaml", _set("critical_use", "nowhere")),
     "calcium.yaml", ["critical_use", "nowhere"]),
    ("critical alternative inside the interval", _edit("potassium.yaml", _set("critical_alternatives.0.low", 4.0)),
     "potassium.yaml", ["critical_alternatives[0]"]),
    ("critical limit beyond the implausible one", _edit("potassium.yaml", _set("critical.high", 12)),
     "potassium.yaml", ["critical", "implausible"]),
    ("source without a title", _edit("sources.yaml", _pop("sources.S1.title")), "sources.yaml", ["S1", "title"]),
    ("source of an unknown kind", _edit("sources.yaml", _set("sources.S1.kind", "blog")), "sources.yaml",
     ["S1", "kind"]),
    ("note rule without a rationale", _edit("notes.yaml", _pop("notes.0.rationale")), "notes.yaml",
     ["notes[0].rationale"]),
    ("missing vocabulary.yaml", _delete("vocabulary.yaml"), "vocabulary.yaml", ["missing"]),
    ("vocabulary term listed twice", _edit("vocabulary.yaml", lambda v: v["symptoms"].append(dict(v["symptoms"][0]))),
     "vocabulary.yaml", ["symptoms", "twice"]),
    ("medication class not in the vocabulary", _edit("medications.yaml", _set("ingredients.6.class", "antacid")),
     "medications.yaml", ["ingredients[6].class", "antacid"]),
    ("partition for an unknown sex", _edit("calcium.yaml", _set("partitions.0.sex", "robot")),
     "calcium.yaml", ["partitions[0].sex", "robot"]),
    # deltas.yaml (issue 15): every rule names a known analyte, a source, a limit and its boundary.
    ("delta rule for an unknown analyte", _edit("deltas.yaml", lambda d: d["deltas"].update(sodium=d["deltas"]["potassium"])),
     "deltas.yaml", ["deltas.sodium"]),
    ("delta rule without a limit", _edit("deltas.yaml", _set("deltas.potassium.0.absolute", None)),
     "deltas.yaml", ["deltas.potassium[0]", "absolute"]),
    ("delta rule citing an unknown source", _edit("deltas.yaml", _set("deltas.calcium.0.source", "NOWHERE")),
     "deltas.yaml", ["deltas.calcium[0].source", "NOWHERE"]),
    ("delta rule without its boundary", _edit("deltas.yaml", _pop("deltas.albumin.0.inclusive")),
     "deltas.yaml", ["inclusive"]),
    ("delta rule of an unknown direction", _edit("deltas.yaml", _set("deltas.vitamin_b12.0.direction", "sideways")),
     "deltas.yaml", ["direction"]),
    ("delta rule id used twice", _edit("deltas.yaml", _set("deltas.calcium.0.id", "potassium-delta-48h")),
     "deltas.yaml", ["deltas.calcium[0].id", "duplicate"]),
    ("history without its look-back", _edit("deltas.yaml", _pop("history.max_age_days")), "deltas.yaml",
     ["history", "max_age_days"]),
    ("non-number limit", _edit("potassium.yaml", _set("reference_interval.low", "three point five")),
     "potassium.yaml", ["reference_interval.low"]),
    ("negative limit", _edit("magnesium.yaml", _set("critical.low", -1)), "magnesium.yaml", ["critical.low"]),
    ("low above high", _edit("potassium.yaml", _set("reference_interval.low", 6.0)),
     "potassium.yaml", ["reference_interval", "low"]),
    ("low above high in partition", _edit("calcium.yaml", _set("partitions.0.reference_interval.high", 8.0)),
     "calcium.yaml", ["partitions", "reference_interval", "low"]),
    ("unknown source tag", _edit("potassium.yaml", _set("reference_interval.low_source", "S999")),
     "potassium.yaml", ["reference_interval", "S999"]),
    ("unknown loinc source tag", _edit("vitamin_b12.yaml", _set("loinc.0.source", "NOPE")),
     "vitamin_b12.yaml", ["loinc[0].source", "NOPE"]),
    ("limit without source", _edit("albumin.yaml", lambda a: a["reference_interval"].pop("source")),
     "albumin.yaml", ["reference_interval", "source"]),
    ("unit not in units.yaml", _edit("potassium.yaml", _add_unit("mmol/furlong")),
     "potassium.yaml", ["units[3]", "mmol/furlong"]),
    ("molar unit for albumin", _edit("albumin.yaml", _add_unit("mmol/L")), "albumin.yaml", ["units", "mmol/L"]),
    ("canonical unit not listed", _edit("potassium.yaml", _set("canonical_unit", "g/L")),
     "potassium.yaml", ["canonical_unit"]),
    ("critical inside interval", _edit("potassium.yaml", _set("critical.low", 4.0)), "potassium.yaml", ["critical"]),
    ("interval outside implausible", _edit("potassium.yaml", _set("implausible.high", 5.0)),
     "potassium.yaml", ["reference_interval"]),
    ("unknown band name", _edit("magnesium.yaml", _set("bands.below", "lowish")), "magnesium.yaml", ["bands.below"]),
    ("unknown field in analyte", _edit("potassium.yaml", _set("colour", "purple")), "potassium.yaml", ["colour"]),
    ("unknown field in limits", _edit("potassium.yaml", _set("critical.middle", 4)),
     "potassium.yaml", ["critical.middle"]),
    ("bad loinc code", _edit("potassium.yaml", _set("loinc.0.code", "2823-3; DROP")), "potassium.yaml",
     ["loinc.0.code"]),
    ("id differs from file name", _edit("potassium.yaml", _set("id", "kalium")), "potassium.yaml", ["id", "kalium"]),
    ("file renamed", _rename("magnesium.yaml", "mg.yaml"), "mg.yaml", ["id", "magnesium"]),
    ("alias shared by two analytes", _edit("magnesium.yaml", _append_alias("K")), "", ["aliases", "magnesium",
                                                                                      "potassium"]),
    ("id of one analyte is the alias of another", _edit("albumin.yaml", _append_alias("Calcium")), "",
     ["aliases", "albumin", "calcium"]),
    ("loinc code shared", _edit("ionized_calcium.yaml", _set("loinc.0.code", "17861-6")), "", ["loinc", "17861-6"]),
    ("invalid yaml", _write("magnesium.yaml", "id: magnesium\nunits: [mg/dL, mmol/L\n  bands: {\n"),
     "magnesium.yaml", ["(file)", "YAML"]),
    ("yaml not a mapping", _write("potassium.yaml", "- just\n- a list\n"), "potassium.yaml", ["(file)"]),
    ("tagged yaml refused", _write("potassium.yaml", "!!python/object/apply:os.system ['true']\n"),
     "potassium.yaml", ["(file)"]),
    ("missing notes.yaml", _delete("notes.yaml"), "notes.yaml", ["missing"]),
    ("missing units.yaml", _delete("units.yaml"), "units.yaml", ["missing"]),
    ("note with unknown condition key", _edit("notes.yaml", _set("notes.0.when", {"band_inn": ["deficient"]})),
     "notes.yaml", ["notes[0]", "band_inn"]),
    ("note with unknown band", _edit("notes.yaml", _set("notes.0.when", {"band_in": ["low"]})),
     "notes.yaml", ["notes[0]", "band_in", "low"]),
    ("note with unknown symptom", _edit("notes.yaml", _set(f"notes.{_note_index('b12-normal-neuro-symptoms')}.when",
                                                        {"symptom_any": ["hiccups"]})),
     "notes.yaml", [f"notes[{_note_index('b12-normal-neuro-symptoms')}]", "symptom_any", "hiccups"]),
    ("band_in on a panel note", _edit("notes.yaml", _set(f"notes.{_note_index('pediatric-intervals')}.when",
                                                      {"band_in": ["low"]})),
     "notes.yaml", [f"notes[{_note_index('pediatric-intervals')}]", "band_in"]),
    ("note citing a nonexistent seed", _edit("notes.yaml", _set("notes.0.sources.0", "999_does_not_exist.txt")),
     "notes.yaml", ["notes[0].sources[0]", "999_does_not_exist.txt"]),
    ("note citing an unknown tag", _edit("notes.yaml", _set("notes.1.sources.0", "S404")),
     "notes.yaml", ["notes[1].sources[0]", "S404"]),
    ("duplicate note id", _edit("notes.yaml", _dup_note), "notes.yaml",
     [f"notes[{len(h.raw_notes())}].id", h.raw_notes()[0]["id"]]),
    ("note for unknown analyte", _edit("notes.yaml", _set("notes.0.analyte", "vitamin_c")),
     "notes.yaml", ["notes[0].analyte", "vitamin_c"]),
    ("note with unknown placeholder", _edit("notes.yaml", _set("notes.0.text", "Adjusted value {corrected_k} here.")),
     "notes.yaml", ["notes[0].text", "corrected_k"]),
    ("note with unknown severity", _edit("notes.yaml", _set("notes.0.severity", "panic")),
     "notes.yaml", ["notes.0.severity"]),
    ("unknown field in units.yaml", _edit("units.yaml", _set("units.0.factor", 1.0)), "units.yaml",
     ["units.0.factor"]),
    ("unit kind that pint contradicts", _edit("units.yaml", _mislabel_kind), "units.yaml", ["pint"]),
    ("spelling claimed by two units", _edit("units.yaml", _spelling_clash), "units.yaml", ["units"]),
    ("source url not a url", _edit("sources.yaml", _set("sources.S1.url", "not a url")), "sources.yaml",
     ["sources", "S1"]),
    ("knowledge without version", _edit("knowledge.yaml", lambda k: k.pop("version")), "knowledge.yaml",
     ["version"]),
]


def test_the_unmodified_copy_loads(tmp_path):
    d = h.copy_ranges(tmp_path)
    kb = load_knowledge(d)
    assert kb.version == h.raw_knowledge()["version"]
    assert set(kb.analytes) == set(h.analyte_ids())
    assert len(kb.notes) == len(h.raw_notes())


@pytest.mark.parametrize("name, breaker, file, fragments", CASES, ids=[c[0] for c in CASES])
def test_broken_folder_is_refused_naming_file_and_field(tmp_path, name, breaker, file, fragments):
    d = h.copy_ranges(tmp_path)
    breaker(d)
    with pytest.raises(KnowledgeError) as ei:
        load_knowledge(d)
    msg = str(ei.value)
    if file:
        assert msg.startswith(file + ":") or ei.value.file == file, msg
    else:  # a clash between two files: either may be named, the message names both analytes
        assert ei.value.file.endswith(".yaml"), msg
    for fragment in fragments:
        assert fragment in msg, (fragment, msg)
    assert ei.value.field and ei.value.field in msg


def test_missing_folder_is_refused(tmp_path):
    with pytest.raises(KnowledgeError) as ei:
        load_knowledge(tmp_path / "nope")
    assert "nope" in str(ei.value)


def test_folder_without_analytes_is_refused(tmp_path):
    d = h.copy_ranges(tmp_path)
    for a in h.analyte_ids():
        (d / f"{a}.yaml").unlink()
    with pytest.raises(KnowledgeError):
        load_knowledge(d)


# ------------------------------------------------------------------ LABINTERP_RANGES_DIR

def test_ranges_dir_env_var_selects_a_labs_copy(tmp_path, monkeypatch):
    k = h.raw_analyte("potassium")["reference_interval"]
    assert k["low"] < 5.0 < 5.05 <= k["high"]  # premise: 5.05 is normal by default
    d = h.copy_ranges(tmp_path)
    h.edit_yaml(d, "potassium.yaml", _set("reference_interval.high", 5.0))
    h.edit_yaml(d, "knowledge.yaml", _set("version", "lab-test-2026.1"))
    monkeypatch.setenv("LABINTERP_RANGES_DIR", str(d))
    lab_kb = load_knowledge(Settings.from_env().ranges_dir)  # the setting, read once, passed in
    assert lab_kb.directory == d
    p = h.panel(h.R("potassium", 5.05))
    report = h.run(p, lab_kb)
    assert (report.results[0].band, report.results[0].flag) == ("high", "H")
    assert report.knowledge_version == "lab-test-2026.1"
    assert report.to_dict()["knowledge_version"] == "lab-test-2026.1"
    assert report.results[0].reference_range.high == 5.0
    # the bundled knowledge is untouched
    default = h.run(p)
    assert default.results[0].band == "normal"
    assert default.knowledge_version == h.raw_knowledge()["version"]


def test_ranges_dir_env_var_pointing_at_a_broken_copy_fails(tmp_path, monkeypatch):
    d = h.copy_ranges(tmp_path)
    h.edit_yaml(d, "potassium.yaml", _set("reference_interval.high", "high"))
    monkeypatch.setenv("LABINTERP_RANGES_DIR", str(d))
    with pytest.raises(KnowledgeError) as ei:
        load_knowledge(Settings.from_env().ranges_dir)
    assert "potassium.yaml" in str(ei.value)


def test_the_core_reads_no_environment_variable(tmp_path, monkeypatch):
    """The folder is a setting passed in; the core never reads LABINTERP_RANGES_DIR behind the caller's back."""
    monkeypatch.setenv("LABINTERP_RANGES_DIR", str(tmp_path / "nope"))
    assert load_knowledge(h.RANGES).version == h.raw_knowledge()["version"]
    assert load_knowledge().directory == h.RANGES.resolve()


def _condition_terms(cond, found):
    """Every context term a condition names, walking all/any/not."""
    (key, arg), = cond.items()
    if key in ("all", "any"):
        for c in arg:
            _condition_terms(c, found)
    elif key == "not":
        _condition_terms(arg, found)
    elif key in ("symptom_any", "medication_any", "condition_any", "diet_in"):
        kind = {"symptom_any": "symptoms", "medication_any": "medications", "condition_any": "conditions",
                "diet_in": "diet"}[key]
        found.setdefault(kind, set()).update(arg)
    return found


def test_every_context_term_the_api_accepts_changes_what_is_said():
    """A term accepted and used by no rule would tell a clinician it was weighed when it was not.
    Sex is the exception: it selects partitions, which a laboratory's knowledge may define by sex."""
    vocabulary = yaml.safe_load((RANGES / "vocabulary.yaml").read_text(encoding="utf-8"))
    used: dict[str, set[str]] = {}
    for rule in yaml.safe_load((RANGES / "notes.yaml").read_text(encoding="utf-8"))["notes"]:
        _condition_terms(rule["when"], used)
    for kind in ("diet", "symptoms", "conditions", "medications"):
        terms = {t["id"] for t in vocabulary[kind]}
        assert terms - used.get(kind, set()) == set(), f"{kind} accepted but used by no rule"
    assert {t["id"] for t in vocabulary["sex"]} == {"female", "male", "other", "unknown"}  # FHIR AdministrativeGender


def test_a_laboratory_selects_a_documented_alternative_critical_limit(tmp_path):
    """`critical_use: augusta` applies Augusta's <= 6.5 / >= 13.0 instead of the default >= 12.0; the
    default is kept, documented, among the alternatives."""
    folder = h.copy_ranges(tmp_path)
    h.edit_yaml(folder, "calcium.yaml", _set("critical_use", "augusta"))
    kb = load_knowledge(folder)
    ca = kb.analytes["calcium"]
    assert (ca.critical.id, ca.critical.high, ca.critical.high_inclusive) == ("augusta", 13.0, True)
    assert "wakemed" in [a.id for a in ca.critical_alternatives]
    assert h.one("calcium", 12.5, knowledge=kb).critical is False
    assert h.one("calcium", 12.5).critical is True  # the bundled default: >= 12.0


def test_a_format_1_folder_still_loads_with_its_old_semantics(tmp_path):
    """Knowledge 2026.11.0 (format 1: no vocabulary.yaml, strict limits) loads, so that
    `labinterp diff-knowledge` can compare it and an unmigrated laboratory folder still starts."""
    import subprocess

    from tests.conftest import ROOT

    dest = tmp_path / "old"
    dest.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "dcb0d55", "reference_ranges"], capture_output=True)
    if archive.returncode != 0:
        pytest.skip("the 2026.11.0 commit is not in this clone's history: " + archive.stderr.decode()[:80])
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    kb = load_knowledge(dest / "reference_ranges")
    assert (kb.version, kb.format) == ("2026.11.0", 1)
    assert "diuretic" in kb.vocabulary.ids("medications")
    assert h.one("calcium", 13.0, knowledge=kb).critical is False  # strict then, as it was
