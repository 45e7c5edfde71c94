"""HL7 v2 messages for the tests: the real examples in ../shared/examples/hl7v2/ (read in place, never
copied; a test that needs one skips, saying why, when shared/ is absent) and ORU^R01 messages built
here for our analytes."""
from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import SHARED

EXAMPLES = SHARED / "examples" / "hl7v2"
GHH = "python-hl7_sample_hl7_ORU_R01_GHH_LAB.hl7"  # v2.4, SN ^182 glucose, PID-7 196203520 (invalid)
OLIS = "hapi-hl7v2_ConvenienceModelParseTest_ORU_R01_v23.hl7"  # v2.3, local code, ZPI Z-segment

# (LOINC, name, unit) of the four analytes of issue 16.
K = ("2823-3", "Potassium", "mmol/L")
CA = ("17861-6", "Calcium", "mg/dL")
B12 = ("2132-9", "Vitamin B12", "pg/mL")
MG = ("19123-9", "Magnesium", "mg/dL")


def example(name: str) -> bytes:
    path = EXAMPLES / name
    if not path.is_file():
        reason = f"{path} is absent: the real HL7 v2 examples live in the shared folder beside the project"
        print(reason)
        pytest.skip(reason)
    return path.read_bytes()


def example_path(name: str) -> Path:
    example(name)
    return EXAMPLES / name


def obx(n: int, analyte: tuple[str, str, str], value: str, *, value_type: str = "NM", unit: str | None = None,
        lab_range: str = "", flags: str = "", status: str = "F", system: str = "LN", observed: str = "") -> str:
    code, name, default_unit = analyte
    unit = f"{default_unit}^{default_unit}^UCUM" if unit is None else unit
    return "|".join(["OBX", str(n), value_type, f"{code}^{name}^{system}", "", value, unit, lab_range, flags,
                     "", "", status, "", "", observed])


def oru(*segments: str, control_id: str = "MSG00001", version: str = "2.5.1", charset: str = "",
        pid: str = "PID|1||PATID1234^^^HOSP^MR||DOE^JANE||19580312|F",
        obr: str = "OBR|1|ORD448811|FIL448811|24323-8^Metabolic panel^LN|||20261119080000+0100",
        message_type: str = "ORU^R01^ORU_R01", terminator: str = "\r", encoding: str = "ascii") -> bytes:
    """An ORU^R01: MSH, PID, one OBR and the given OBX/NTE/Z segments (an "OBR|" segment among them
    opens another order)."""
    msh = (f"MSH|^~\\&|LIS|LAB|EHR|HOSP|20261119083000+0100||{message_type}|{control_id}|P|{version}"
           + (f"||||||{charset}" if charset else ""))
    lines = [msh] + ([pid] if pid else []) + ([obr] if obr else []) + list(segments)
    return (terminator.join(lines) + terminator).encode(encoding)


def segments(raw: bytes) -> list[bytes]:
    return [s for s in raw.replace(b"\r\n", b"\r").replace(b"\n", b"\r").split(b"\r") if s]


def ours(segment: bytes) -> bool:
    """An NTE this service wrote."""
    fields = segment.split(segment[3:4]) if len(segment) > 3 else []
    return segment.startswith(b"NTE") and len(fields) > 3 and fields[2] == b"O" and fields[3].startswith(b"labinterp")


def notes_after(raw: bytes, index: int) -> list[str]:
    """The text of our NTEs that follow segment `index` (and any NTEs between)."""
    segs = segments(raw)
    out = []
    for seg in segs[index + 1:]:
        if not seg.startswith(b"NTE"):
            break
        if ours(seg):
            out.append(seg.split(b"|", 3)[3].decode())
    return out
