"""ORU^R01 enrichment on the core (service/hl7v2, no server): flags, intervals and NTEs for our analytes,
and everything else passed on byte for byte."""
from __future__ import annotations

import re

import hl7
import pytest

from service.core import Context, PanelInput, Patient, ResultInput, default_knowledge, interpret_panel
from service.hl7v2.enrich import NotInterpretable, enrich
from service.hl7v2.er7 import read_message
from service.hl7v2.oru import lab_range

from .hl7_messages import B12, CA, GHH, K, MG, OLIS, example, notes_after, obx, oru, ours, segments

KB = default_knowledge()


def run(raw: bytes) -> bytes:
    return enrich(read_message(raw), KB, 100).raw


def fields(raw: bytes, index: int) -> list[bytes]:
    return segments(raw)[index].split(b"|")


def obx_indexes(raw: bytes) -> list[int]:
    return [i for i, s in enumerate(segments(raw)) if s.startswith(b"OBX")]


def assert_only_our_edits(before: bytes, after: bytes) -> None:
    """Take our NTEs out and OBX-7/OBX-8 of the OBX we edited back: the original bytes remain."""
    kept = [s for s in re.split(rb"(?<=\r)", after) if not ours(s.rstrip(b"\r"))]
    original = re.split(rb"(?<=\r)", before)
    assert len(kept) == len(original)
    for mine, theirs in zip(kept, original):
        if mine != theirs:
            a, b = mine.split(b"|"), theirs.split(b"|")
            assert a[0] == b"OBX", (mine, theirs)
            b += [b""] * (len(a) - len(b))
            assert [x for i, x in enumerate(a) if i not in (7, 8)] == [x for i, x in enumerate(b) if i not in (7, 8)]


# --- our four analytes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("analyte, value, flag, interval", [
    (K, "3.1", "L", "3.5-5.1"), (K, "4.2", "N", "3.5-5.1"), (K, "6.5", "HH", "3.5-5.1"),
    (CA, "11.0", "H", "8.8-10.2"),  # the patient is 68: Mayo's 60+ partition
    (CA, "6.0", "LL", "8.8-10.2"),
    (B12, "150", "L", "200-900"), (B12, "450", "N", "200-900"),
    (MG, "1.5", "L", "1.7-2.4"), (MG, "0.8", "LL", "1.7-2.4"),
])
def test_each_analyte_gets_its_flag_interval_and_the_cores_notes(analyte, value, flag, interval):
    raw = oru(obx(1, analyte, value))
    out = run(raw)
    at = obx_indexes(out)[0]
    obx_fields = fields(out, at)
    assert (obx_fields[7], obx_fields[8]) == (interval.encode(), flag.encode())
    expected = interpret_panel(PanelInput((ResultInput(value=float(value), unit=analyte[2], code=analyte[0]),),
                                          Patient(68.69, "female"), Context()), KB)
    assert notes_after(out, at) == [f"labinterp {n.as_text()}" for n in expected.results[0].notes]
    assert expected.results[0].flag == flag
    assert_only_our_edits(raw, out)


def test_a_panel_of_all_four_with_panel_notes_after_the_obr():
    raw = oru(obx(1, K, "3.1"), obx(2, CA, "8.1"), obx(3, B12, "<^150", value_type="SN"), obx(4, MG, "1.5"))
    enriched = enrich(read_message(raw), KB, 100)
    assert (enriched.interpreted, enriched.not_interpreted) == (4, 0)
    report = enriched.reports[0]
    assert [r.flag for r in report.results] == ["L", "L", "L", "L"]
    out = enriched.raw
    obr = [i for i, s in enumerate(segments(out)) if s.startswith(b"OBR")][0]
    after_obr = notes_after(out, obr)
    assert after_obr[:-1] == [f"labinterp {n.as_text()}" for n in report.notes]
    assert after_obr[-1] == f"labinterp (knowledge {KB.version}) {KB.disclaimer}"
    assert_only_our_edits(raw, out)


def test_nte_set_ids_follow_the_laboratorys_own_ntes():
    raw = oru(obx(1, K, "3.1"), "NTE|1|L|haemolysis checked", "NTE|2|L|second remark", "ZXX|local|thing")
    out = run(raw)
    segs = segments(out)
    at = obx_indexes(out)[0]
    assert segs[at + 1:at + 3] == [b"NTE|1|L|haemolysis checked", b"NTE|2|L|second remark"]
    assert segs[at + 3].startswith(b"NTE|3|O|labinterp ")
    assert segs[-1] == b"ZXX|local|thing"


def test_an_interval_the_laboratory_sent_is_used_and_kept():
    out = run(oru(obx(1, K, "5.3", lab_range="3.5-5.5"), obx(2, MG, "2.5", lab_range="1.6_2.6"),
                  obx(3, K, "5.3", lab_range="<5.1"), obx(4, CA, "9", lab_range="normal for age")))
    at = obx_indexes(out)
    assert [fields(out, i)[7:9] for i in at] == [[b"3.5-5.5", b"N"], [b"1.6_2.6", b"N"], [b"<5.1", b"H"],
                                                 [b"normal for age", b"N"]]
    assert any("OBX-7 could not be read" in n for n in notes_after(out, at[3]))
    assert lab_range("3.90-5.60").low == 3.9 and lab_range(">3.5").high is None and lab_range("3.5 - x") is None


def test_a_range_the_core_refuses_falls_back_to_ours_and_says_so():
    out = run(oru(obx(1, K, "5.3", lab_range="5.5-3.5")))
    at = obx_indexes(out)[0]
    assert fields(out, at)[7:9] == [b"5.5-3.5", b"H"]
    assert any("OBX-7 could not be used" in n and "above high" in n for n in notes_after(out, at))


@pytest.mark.parametrize("value_type, value, flag", [
    ("SN", "<^150", "L"), ("SN", "^182", "L"), ("SN", ">^2000", "H"), ("SN", "=^450", "N"),
    ("NM", "+450.0", "N"), ("NM", ".5", None), ("ST", "<150", "L"), ("ST", "450", "N"),
])
def test_numeric_and_structured_values(value_type, value, flag):
    out = run(oru(obx(1, B12, value, value_type=value_type)))
    at = obx_indexes(out)[0]
    if flag is None:  # 0.5 pg/mL is below the implausible limit: no flag, and a note saying to verify
        assert fields(out, at)[8] == b"" and any("[warning]" in n or "verify" in n.lower() for n in notes_after(out, at))
    else:
        assert fields(out, at)[8] == flag.encode()


@pytest.mark.parametrize("value_type, value, why", [
    ("SN", "1^-^5", "range or ratio"), ("SN", "^1^:^80", "range or ratio"), ("SN", "<>^5", "structured number"),
    ("NM", "four", "not an NM number"), ("CE", "POS^Positive", "value type CE"), ("NM", "", "holds no value"),
    ("NM", "4.1~4.2", "more than one value"), ("ST", "see comment", "not a number"),
])
def test_a_value_we_cannot_read_leaves_the_obx_untouched_and_says_why(value_type, value, why):
    raw = oru(obx(1, K, value, value_type=value_type))
    enriched = enrich(read_message(raw), KB, 100)
    out = enriched.raw
    at = obx_indexes(out)[0]
    assert segments(out)[at] == segments(raw)[obx_indexes(raw)[0]]
    notes = notes_after(out, at)
    assert len(notes) == 1 and "not interpreted" in notes[0] and why in notes[0]
    assert (enriched.interpreted, enriched.not_interpreted) == (0, 1)


@pytest.mark.parametrize("unit, flag", [
    ("mmol/L^mmol/L^UCUM", "L"), ("^mmol/L", "L"), ("mEq/L", "L"), ("MMOL/L", "L"),
    ("LOCAL1^mmol/L^L", "L"), ("meq/l^milliequivalent per litre^L", "L"),
])
def test_units_from_obx6_as_ucum_code_or_text(unit, flag):
    out = run(oru(obx(1, K, "3.1", unit=unit)))
    assert fields(out, obx_indexes(out)[0])[8] == flag.encode()


@pytest.mark.parametrize("unit, why", [("furlongs", "unknown unit"), ("", "unit is required"),
                                       ("mg/dL", "LOINC 2823-3 reports substance concentration"),
                                       ("pg/mL", "not accepted for potassium")])
def test_a_unit_the_core_refuses_is_said_in_an_nte(unit, why):
    raw = oru(obx(1, K, "3.1", unit=unit))
    out = run(raw)
    at = obx_indexes(out)[0]
    assert segments(out)[at] == segments(raw)[obx_indexes(raw)[0]]
    assert any(why in n and "OBX-6" in n for n in notes_after(out, at))


def test_analytes_by_name_without_loinc_and_loinc_decides_over_names():
    out = run(oru(obx(1, ("K1", "Potassium", "mmol/L"), "3.1", system="L"),  # local code, our name
                  obx(2, ("LOC", "b12", "pg/mL"), "150", system="99LOC"),  # an alias
                  obx(3, ("1554-5", "Potassium", "mmol/L"), "3.1"),  # LOINC glucose: not ours whatever its text
                  obx(4, ("2823-3", "Potassium", "mmol/L"), "3.1", system="2.16.840.1.113883.6.1")))  # LOINC's OID
    at = obx_indexes(out)
    assert [fields(out, i)[8] for i in at] == [b"L", b"L", b"", b"L"]
    assert notes_after(out, at[2]) == []


def test_result_status_without_a_result_is_not_interpreted():
    out = run(oru(obx(1, K, "3.1", status="X"), obx(2, K, "3.1", status="C"), obx(3, K, "3.1", status="W")))
    at = obx_indexes(out)
    assert [fields(out, i)[8] for i in at] == [b"", b"L", b""]
    assert "OBX-11 result status X" in notes_after(out, at[0])[0]


def test_the_laboratorys_other_flags_are_kept_after_ours_and_a_disagreement_is_said():
    out = run(oru(obx(1, K, "4.2", flags="H~U"), obx(2, K, "3.1", flags="L")))
    at = obx_indexes(out)
    assert fields(out, at[0])[8] == b"N~U"
    assert any("flagged this result H" in n and "normal (N)" in n for n in notes_after(out, at[0]))
    assert fields(out, at[1])[8] == b"L" and not any("flagged" in n for n in notes_after(out, at[1]))


def test_a_censored_value_across_bands_is_indeterminate_without_a_flag():
    out = run(oru(obx(1, K, "<^4.0", value_type="SN", flags="L")))
    at = obx_indexes(out)[0]
    assert fields(out, at)[8] == b"L"  # the laboratory's, left as it was
    assert any("spans more than one band" in n for n in notes_after(out, at))


# --- orders, patients, dates ---------------------------------------------------------------------------

def test_repeated_obr_groups_are_separate_panels():
    raw = oru(obx(1, K, "3.1"), "OBR|2|ORD2|FIL2|2132-9^B12^LN|||20261119090000+0100", obx(1, B12, "150"),
              "OBR|3|ORD3|FIL3|1554-5^Glucose^LN|||20261119090000+0100", obx(1, ("1554-5", "Glucose", "mg/dL"), "90"))
    enriched = enrich(read_message(raw), KB, 100)
    assert len(enriched.reports) == 2 and [len(r.results) for r in enriched.reports] == [1, 1]
    obrs = [i for i, s in enumerate(segments(enriched.raw)) if s.startswith(b"OBR")]
    assert [len(notes_after(enriched.raw, i)) > 0 for i in obrs] == [True, True, False]  # glucose: not ours
    assert_only_our_edits(raw, enriched.raw)


def test_age_and_sex_from_pid_choose_the_calcium_partition():
    def interval(pid: str) -> bytes:
        out = run(oru(obx(1, CA, "10.1"), pid=pid))
        return fields(out, obx_indexes(out)[0])[7]

    assert interval("PID|1||X||DOE^JANE||19580312|F") == b"8.8-10.2"  # 68 at collection
    assert interval("PID|1||X||DOE^JANE||19900312|F") == b"8.6-10.0"  # 36
    assert interval("PID|1||X||DOE^JANE|||F") == b"8.6-10.2"  # unknown age: the default interval


@pytest.mark.parametrize("pid, remark", [
    ("PID|1||X||DOE^JANE||196203520|F", "PID-7 (date of birth) is not a valid HL7 date"),
    ("PID|1||X||DOE^JANE||20300101|F", "PID-7 (date of birth) is after the collection date"),
])
def test_an_invalid_birth_date_is_said_and_the_default_interval_applies(pid, remark):
    out = run(oru(obx(1, CA, "10.1"), pid=pid))
    assert fields(out, obx_indexes(out)[0])[7] == b"8.6-10.2"
    obr = [i for i, s in enumerate(segments(out)) if s.startswith(b"OBR")][0]
    assert any(remark in n for n in notes_after(out, obr))


def test_an_invalid_collection_time_is_said_and_obx14_stands_in():
    raw = oru(obx(1, CA, "10.1", observed="20261119081500+0100"), obr="OBR|1|O|F|X^Y^LN|||2026131908")
    enriched = enrich(read_message(raw), KB, 100)
    obr = [i for i, s in enumerate(segments(enriched.raw)) if s.startswith(b"OBR")][0]
    assert any("OBR-7 (observation date/time) is not a valid" in n for n in notes_after(enriched.raw, obr))
    assert fields(enriched.raw, obx_indexes(enriched.raw)[0])[7] == b"8.8-10.2"


def test_more_results_than_a_panel_takes_are_not_interpreted_and_the_order_says_so():
    raw = oru(*[obx(n, K, "3.1") for n in range(1, 102)])
    enriched = enrich(read_message(raw), KB, 100)
    assert (enriched.interpreted, enriched.reports) == (0, ())
    assert all(fields(enriched.raw, i)[8] == b"" for i in obx_indexes(enriched.raw))
    obr = [i for i, s in enumerate(segments(enriched.raw)) if s.startswith(b"OBR")][0]
    assert any("more than 100 results" in n for n in notes_after(enriched.raw, obr))


# --- byte for byte ---------------------------------------------------------------------------------------

def test_escape_sequences_z_segments_and_unknown_fields_pass_byte_for_byte():
    raw = oru(obx(1, K, "3.1", flags="L"), "NTE|1|L|A \\T\\ B \\F\\ C \\S\\ D \\R\\ E \\E\\ F \\X0D\\ G \\H\\bold\\N\\",
              "ZPI|||7005728^^^TML^MR||TEST^RACHEL^DIAMOND~alias", "OBX|2|FT|11526-1^Report^LN||line\\.br\\two||||||F",
              pid="PID|1||123^^^A\\T\\B^MR||O\\S\\BRIEN^MARY||19580312|F|||1 MAIN ST\\R\\APT 2")
    out = run(raw)
    assert_only_our_edits(raw, out)
    for seg in segments(raw):
        if not seg.startswith(b"OBX|1|"):
            assert seg in segments(out)


@pytest.mark.parametrize("charset, name, encoding", [
    ("UNICODE UTF-8", "Zoë Ångström 山田", "utf-8"), ("8859/1", "Müller Bjørk", "latin-1"), ("", "Plain", "ascii"),
])
def test_the_character_set_of_msh18_is_kept(charset, name, encoding):
    raw = oru(obx(1, K, "3.1"), f"NTE|1|L|{name}", charset=charset, pid=f"PID|1||X||{name}^A||19580312|F",
              encoding=encoding)
    out = run(raw)
    assert_only_our_edits(raw, out)
    assert name.encode(encoding) in out
    out.decode(encoding)  # what we added is in the message's own character set


def test_an_undeclared_character_set_with_other_bytes_passes_untouched():
    raw = oru(obx(1, K, "3.1"), pid="PID|1||X||M\xfcller^A||19580312|F", encoding="latin-1")  # no MSH-18
    out = run(raw)
    assert_only_our_edits(raw, out)
    assert b"M\xfcller" in out


def test_our_text_is_escaped_with_the_messages_own_delimiters():
    # Field !, component @, repetition ~, escape $, subcomponent ;: "Sources: a; b" needs escaping.
    text = oru(obx(1, B12, "150")).decode().replace("MSH|^~\\&|", "MSH!@~$;!")
    text = re.sub(r"(?<=[^\r])\|", "!", text).replace("^", "@")
    raw = text.encode()
    out = run(raw)
    parsed = hl7.parse(out.decode())
    notes = [parsed.unescape(str(s(3))) for s in parsed.segments("NTE") if str(s(2)) == "O"]
    expected = interpret_panel(PanelInput((ResultInput(value=150.0, unit="pg/mL", code="2132-9"),),
                                          Patient(68.69, "female"), Context()), KB)
    assert notes[1:] == [f"labinterp {n.as_text()}" for n in expected.results[0].notes]
    assert any("; " in n for n in notes), "no note carries the subcomponent delimiter: the test proves nothing"
    ours = [line for line in out.split(b"\r") if line.startswith(b"NTE!") and b"labinterp" in line]
    assert ours and all(b"$T$" in line or b";" not in line for line in ours)
    assert not any(b";" in line for line in ours), "a raw subcomponent delimiter in our NTE"


@pytest.mark.parametrize("terminator", ["\r", "\r\n", "\n"])
def test_segment_terminators_are_kept(terminator):
    raw = oru(obx(1, K, "3.1"), terminator=terminator)
    out = run(raw)
    assert out.count(b"\n") == (0 if terminator == "\r" else len(segments(out)))
    assert out.count(b"\r") == (0 if terminator == "\n" else len(segments(out)))


@pytest.mark.parametrize("terminator", ["\r", "\r\n", "\n"])
def test_a_segment_that_is_its_id_alone_is_read(terminator):
    # Found by schemathesis: "ZXY" with no field separator, followed by a line end, was refused.
    raw = oru(obx(1, K, "3.1"), "ZXY", "NTE|1||a comment", terminator=terminator)
    out = run(raw)
    assert b"ZXY" + terminator.encode() in out and b"|L|" in out


def test_the_contracts_pattern_matches_the_messages_these_tests_enrich():
    from service.hl7v2.views import ORU_PATTERN
    pattern = re.compile(ORU_PATTERN)
    for raw in (oru(obx(1, K, "3.1")), oru(obx(1, K, "3.1"), terminator="\r\n"), oru(obx(1, MG, "1.5"), version="2.3"),
                oru(obx(1, CA, "9.0"), charset="UNICODE UTF-8"), oru(obx(1, K, "3.1"), "ZXY")):
        assert pattern.search(raw.decode("latin-1")), raw
    for refused in (oru(obx(1, K, "3.1"), version="2.6"), oru(obx(1, K, "3.1")).replace(b"ORU^R01", b"ADT^A01"),
                    oru(obx(1, K, "3.1")) + oru(obx(1, K, "3.1"))):
        assert not pattern.search(refused.decode("latin-1")), refused


def test_the_real_examples_have_nothing_of_ours_and_pass_unchanged():
    for name in (GHH, OLIS):
        raw = example(name)
        enriched = enrich(read_message(raw), KB, 100)
        assert enriched.raw == raw and enriched.reports == ()


def test_the_ghh_sample_with_a_potassium_result():
    raw = example(GHH).replace(b"1554-5^GLUCOSE^POST 12H CFST:MCNC:PT:SER/PLAS:QN||^182|mg/dl|70_105|H",
                               b"2823-3^POTASSIUM^LN||^3.2|mmol/l|3.5_5.1|L", 1)
    out = run(raw)
    obx_at = obx_indexes(out)
    assert fields(out, obx_at[0])[7:9] == [b"3.5_5.1", b"L"]
    assert segments(out)[obx_at[1]] == segments(raw)[4]  # the FN glucose result, untouched
    obr = [i for i, s in enumerate(segments(out)) if s.startswith(b"OBR")][0]
    assert any("PID-7 (date of birth) is not a valid HL7 date" in n for n in notes_after(out, obr))
    assert_only_our_edits(raw, out)


def test_the_olis_v23_sample_with_a_magnesium_result_keeps_its_z_segment():
    raw = example(OLIS).replace(b"Z114099^Erc^L||4.00|tril/L|3.90-5.60", b"MG^Magnesium^L||1.4|mg/dL|", 1)
    out = run(raw)
    at = obx_indexes(out)[0]
    assert fields(out, at)[7:9] == [b"1.7-2.4", b"L"]
    assert segments(out)[-1] == segments(raw)[-1] and segments(out)[-1].startswith(b"ZPI")
    assert_only_our_edits(raw, out)


@pytest.mark.parametrize("change, code", [
    ({"message_type": "ADT^A01"}, "200"), ({"message_type": "ORU^R30"}, "201"), ({"version": "2.6"}, "203"),
    ({"version": "2.2"}, "203"), ({"charset": "ISO IR87"}, "103"), ({"charset": "UNICODE UTF-16"}, "103"),
])
def test_messages_this_door_does_not_edit_as_a_whole(change, code):
    with pytest.raises(NotInterpretable) as info:
        enrich(read_message(oru(obx(1, K, "3.1"), **change)), KB, 100)
    assert info.value.code == code


@pytest.mark.parametrize("version", ["2.3", "2.3.1", "2.4", "2.5", "2.5.1"])
def test_every_version_from_2_3_to_2_5_1_is_enriched(version):
    out = run(oru(obx(1, K, "3.1"), version=version))
    assert fields(out, obx_indexes(out)[0])[8] == b"L"


def test_fields_python_hl7_cannot_unescape_are_never_logged(caplog, capfd):
    # \\Q\\ and \\X4\\ are no escape sequences python-hl7 decodes; it would log the whole field.
    raw = oru(obx(1, K, "3.1\\Q\\7"), obx(2, K, "3.2", unit="mmol\\X4\\/L"),
              pid="PID|1||X||QUIXOTE^ZEBULON||1947\\Q\\0229|M")
    with caplog.at_level("DEBUG"):
        run(raw)
    out, err = capfd.readouterr()
    for secret in ("QUIXOTE", "1947", "3.1", "mmol"):
        assert secret not in caplog.text and secret not in err and secret not in out


# ---------------------------------------------------------------- history within one message (issue 15)

def _two_orders(first: str, second: str, pid2: bool = False) -> bytes:
    segments = ["MSH|^~\\&|LIS|LAB|EHR|HOSP|20261120083000+0000||ORU^R01^ORU_R01|MSG1|P|2.5.1",
                "PID|1||P1^^^HOSP^MR||DOE^JANE||19580312|F",
                "OBR|1|O1|F1|24323-8^Metabolic panel^LN|||20261118080000+0000", first]
    if pid2:
        segments.append("PID|2||P2^^^HOSP^MR||ROE^RICHARD||19600101|M")
    segments += ["OBR|2|O2|F2|24323-8^Metabolic panel^LN|||20261120080000+0000", second]
    return ("\r".join(segments) + "\r").encode()


def _obx8(raw: bytes) -> list[str]:
    return [s.split("|")[8] for s in raw.decode().split("\r") if s.startswith("OBX|")]


def test_an_earlier_order_of_the_patient_is_history_for_the_newest_result():
    k = "OBX|1|NM|2823-3^Potassium^LN||{}|mmol/L^mmol/L^UCUM|||||F"
    out = enrich(read_message(_two_orders(k.format("4.4"), k.format("3.0"))), KB, 100)
    assert _obx8(out.raw) == ["N", "L~D"]  # the older result stands as it is, the newer gains D
    text = out.raw.decode()
    assert "from 4.4 to 3.0 mmol/L over 2 days" in text and "delta-check limit" in text
    rising = enrich(read_message(_two_orders(k.format("3.6"), k.format("5.0"))), KB, 100)
    assert _obx8(rising.raw) == ["N", "N~U"]
    small = enrich(read_message(_two_orders(k.format("4.0"), k.format("4.4"))), KB, 100)
    assert _obx8(small.raw) == ["N", "N"]  # a change within the limit gets no change flag


def test_another_patients_order_is_never_history():
    k = "OBX|1|NM|2823-3^Potassium^LN||{}|mmol/L^mmol/L^UCUM|||||F"
    out = enrich(read_message(_two_orders(k.format("4.4"), k.format("3.0"), pid2=True)), KB, 100)
    assert _obx8(out.raw) == ["N", "L"] and "delta-check limit" not in out.raw.decode()


def test_a_laboratorys_own_change_flag_gives_way_to_ours():
    first = "OBX|1|NM|2823-3^Potassium^LN||4.4|mmol/L^mmol/L^UCUM|||||F"
    second = "OBX|1|NM|2823-3^Potassium^LN||3.0|mmol/L^mmol/L^UCUM||U~W|||F"
    assert _obx8(enrich(read_message(_two_orders(first, second)), KB, 100).raw) == ["N", "L~D~W"]
