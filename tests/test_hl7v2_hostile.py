"""A hostile catalogue for ER7 and MLLP: what is not HL7 is refused with an AR that says why, what is
HL7 but strange passes untouched, and nothing stops the service from serving the next message."""
from __future__ import annotations

import socket
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from service.core import default_knowledge
from service.hl7v2.enrich import NotInterpretable, enrich
from service.hl7v2.er7 import Er7Error, read_message

from .hl7_messages import K, obx, oru, segments
from .mllp_peers import END, VT, DownstreamPeer, ThreadedListener, frame, mllp_exchange, msa, read_frame

KB = default_knowledge()
MSH = "MSH|^~\\&|LIS|LAB|EHR|HOSP|20261119083000||ORU^R01|{id}|P|2.5.1"

# Bytes that are not an ER7 message we can read: each is refused (HTTP 400, MLLP AR) with this code.
NOT_ER7 = {
    "empty": (b"", "100"),
    "missing MSH": (b"PID|1||X\rOBR|1\rOBX|1|NM|2823-3^K^LN||3.1|mmol/L", "100"),
    "batch header": (b"BHS|^~\\&|LIS\rMSH|^~\\&|LIS", "200"),
    "no field separator": (b"MSH", "102"),
    "tab as field separator": (b"MSH\t^~\\&\tLIS\tLAB", "102"),
    "three encoding characters": (b"MSH|^~&|LIS|LAB|||||ORU^R01|X|P|2.5.1", "102"),
    "repeated encoding character": (b"MSH|^^\\&|LIS|LAB|||||ORU^R01|X|P|2.5.1", "102"),
    "letters as encoding characters": (b"MSH|abcd|LIS|LAB|||||ORU^R01|X|P|2.5.1", "102"),
    "field separator among them": (b"MSH|^|\\&|LIS|LAB|||||ORU^R01|X|P|2.5.1", "102"),
    "MSH-2 not closed": (b"MSH|^~\\&\rPID|1", "102"),
    "binary noise": (bytes(range(256)) * 4, "100"),
    "binary segment id": (MSH.format(id="B1").encode() + b"\r\x00\xff\x10|1|2", "100"),
    "lower-case segment id": (MSH.format(id="B2").encode() + b"\rpid|1", "100"),
    "two messages in one": (MSH.format(id="B3").encode() + b"\r" + MSH.format(id="B4").encode(), "100"),
}


def _huge_obx5() -> bytes:
    return oru(obx(1, K, "3" * 600_000))


def _binary_inside_fields() -> bytes:
    return oru(obx(1, K, "3.1"), "NTE|1|L|\x00\x01\x7f\xff\xfe binary \x1b[0m", "ZBN|\x00|\xff", encoding="latin-1")


def _ten_thousand_segments() -> bytes:
    orders = []
    for o in range(100):
        orders.append(f"OBR|{o + 1}|ORD{o}|FIL{o}|24323-8^Panel^LN|||20261119080000+0100")
        orders += [obx(n, K, f"{3 + (n % 30) / 10:.1f}") for n in range(1, 100)]
    return oru(*orders, obr="")


def _ten_thousand_ntes() -> bytes:
    return oru(obx(1, K, "3.1"), *[f"NTE|{n}|L|remark {n}" for n in range(1, 10_000)])


# Strange but readable ER7: each passes, its segments untouched but for our edits of the OBX.
STRANGE = {"a huge OBX-5": _huge_obx5, "binary bytes inside fields": _binary_inside_fields,
           "10,000 segments (100 orders of 99 results)": _ten_thousand_segments,
           "10,000 NTEs after one result": _ten_thousand_ntes}


@pytest.mark.parametrize("name", list(NOT_ER7))
def test_what_is_not_er7_is_refused_with_a_reason(name):
    raw, code = NOT_ER7[name]
    with pytest.raises(Er7Error) as info:
        read_message(raw)
    assert info.value.code == code and info.value.text


@pytest.mark.parametrize("name", list(STRANGE))
def test_strange_but_readable_er7_passes_and_is_bounded_in_time(name):
    raw = STRANGE[name]()
    started = time.perf_counter()
    enriched = enrich(read_message(raw), KB, 100)
    seconds = time.perf_counter() - started
    assert seconds < 20, f"{name}: {seconds:.1f} s"
    before, after = segments(raw), segments(enriched.raw)
    assert [s for s in after if not (s.startswith(b"NTE|") and b"|O|labinterp" in s)
            and not s.startswith(b"OBX")] == [s for s in before if not s.startswith(b"OBX")]
    if name.startswith("10,000 segments"):
        assert len(before) >= 10_000 and enriched.interpreted == 100 * 99 and len(enriched.reports) == 100
    if name == "a huge OBX-5":  # 600,000 digits are no NM number a laboratory sends: said, not read
        assert enriched.interpreted == 0 and enriched.not_interpreted == 1
    if name == "10,000 NTEs after one result":
        assert any(s.startswith(b"NTE|10000|O|labinterp") for s in after)


@pytest.mark.parametrize("name", list(NOT_ER7))
def test_over_http_what_is_not_er7_is_a_400_ack(client, name):
    raw, code = NOT_ER7[name]
    resp = client.post("/hl7v2/interpret", data=raw, content_type="x-application/hl7-v2+er7")
    assert resp.status_code == 400 and b"\rMSA|AR|" in resp.data and f"|{code}^".encode() in resp.data


@pytest.mark.parametrize("name", list(STRANGE))
def test_over_http_strange_er7_is_answered(client, name):
    resp = client.post("/hl7v2/interpret", data=STRANGE[name](), content_type="x-application/hl7-v2+er7")
    assert resp.status_code == 200


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=400) | st.builds(lambda tail: oru(obx(1, K, "3.1")) + tail, st.binary(max_size=200))
       | st.builds(lambda text: ("MSH|^~\\&|" + text).encode("utf-8", "surrogatepass"), st.text(max_size=300)))
def test_arbitrary_bytes_are_read_enriched_or_refused_never_anything_else(raw):
    try:
        enrich(read_message(raw), KB, 100)
    except (Er7Error, NotInterpretable):
        pass


# --- over MLLP ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def downstream():
    peer = DownstreamPeer("AA")
    yield peer
    peer.close()


@pytest.fixture(scope="module")
def listener(downstream):
    # The peer answers a 10,000-segment message in a few seconds (python-hl7 parses it to build its ACK).
    running = ThreadedListener(forward=("127.0.0.1", downstream.port), read_timeout=1.0, forward_timeout=30.0)
    yield running
    running.close()


def _still_serves(listener) -> None:
    ack = mllp_exchange(listener.port, frame(oru(obx(1, K, "3.1"), control_id="AFTER")))
    assert msa(ack) == ("AA", "AFTER")


@pytest.mark.parametrize("name", list(NOT_ER7))
def test_over_mllp_what_is_not_er7_gets_ar_and_the_listener_goes_on(listener, downstream, name):
    received = len(downstream.received)
    raw, code = NOT_ER7[name]
    ack = mllp_exchange(listener.port, frame(raw))
    assert msa(ack)[0] == "AR" and f"|{code}^".encode() in ack
    assert len(downstream.received) == received  # nothing refused is passed on
    _still_serves(listener)


@pytest.mark.parametrize("name", list(STRANGE))
def test_over_mllp_strange_er7_is_forwarded_and_acknowledged(listener, downstream, name):
    raw = STRANGE[name]()
    ack = mllp_exchange(listener.port, frame(raw), timeout=60)
    assert msa(ack) == ("AA", "MSG00001")
    assert downstream.received[-1] == enrich(read_message(raw), KB, 100).raw


def test_a_frame_without_its_start_byte_gets_ar_with_the_control_id(listener):
    ack = mllp_exchange(listener.port, oru(obx(1, K, "3.1"), control_id="NOVT") + END)
    assert msa(ack) == ("AR", "NOVT") and b"<VT>" in ack
    _still_serves(listener)


def test_an_abandoned_frame_then_a_whole_one_is_read_from_the_last_start_byte(listener, downstream):
    ack = mllp_exchange(listener.port, VT + b"MSH|^~\\&|half a mess" + frame(oru(obx(1, K, "3.1"), control_id="WHOLE")))
    assert msa(ack) == ("AA", "WHOLE") and downstream.received[-1].startswith(b"MSH|")


def test_stray_line_ends_between_frames_are_skipped(listener):
    with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as sock:
        for n in range(3):
            sock.sendall(b"\r\n" + frame(oru(obx(1, K, "3.1"), control_id=f"S{n}")))
            assert msa(read_frame(sock)) == ("AA", f"S{n}")


def test_an_end_byte_without_its_carriage_return_is_half_a_frame(listener):
    with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as sock:
        sock.sendall(VT + oru(obx(1, K, "3.1")) + b"\x1c")  # <FS> but no <CR>: not the end
        assert read_frame(sock, timeout=3) == b""  # closed after the read timeout, nothing acknowledged
    _still_serves(listener)


def test_half_a_frame_then_silence_is_closed_unacknowledged(listener, downstream):
    received = len(downstream.received)
    with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as sock:
        sock.sendall(VT + oru(obx(1, K, "3.1"))[:60])
        started = time.monotonic()
        assert read_frame(sock, timeout=5) == b""
        assert 0.8 < time.monotonic() - started < 4  # the listener's 1 s read timeout, then closed
    assert len(downstream.received) == received
    _still_serves(listener)


def test_a_message_over_the_size_limit_gets_ar_and_the_connection_goes_on(downstream):
    small = ThreadedListener(forward=("127.0.0.1", downstream.port), max_bytes=4000)
    try:
        with socket.create_connection(("127.0.0.1", small.port), timeout=10) as sock:
            sock.sendall(frame(oru(obx(1, K, "3.1"), "NTE|1|L|" + "x" * 20000, control_id="BIG")))
            ack = read_frame(sock)
            assert msa(ack) == ("AR", "BIG") and b"larger than 4000 bytes" in ack
            sock.sendall(frame(oru(obx(1, K, "3.1"), control_id="NEXT")))
            assert msa(read_frame(sock)) == ("AA", "NEXT")
    finally:
        small.close()
