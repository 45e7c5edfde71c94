"""The MLLP listener against real peers: python-hl7's own `mllp_send` as the sender, and a downstream
system (tests/mllp_peers.py) that acknowledges, refuses, stalls or drops. The sender gets AA only
after the downstream's AA; otherwise AE (resend) or AR (resending cannot help), with an ERR segment,
and its control id echoed in MSA-2. Logs say what became of each message, never what it held."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from service.core import default_knowledge
from service.hl7v2.enrich import enrich
from service.hl7v2.er7 import read_message

from .hl7_messages import B12, CA, GHH, K, MG, OLIS, example, example_path, obx, oru, segments
from .mllp_peers import DownstreamPeer, ThreadedListener, frame, mllp_exchange, msa, read_frame
from .servers import free_port, start_listener, wait_listening

KB = default_knowledge()
MLLP_SEND = Path(sys.executable).with_name("mllp_send")


def enriched(raw: bytes) -> bytes:
    return enrich(read_message(raw), KB, 100).raw


def mllp_send(port: int, path: Path, *options: str) -> list[tuple[str, str]]:
    """Run python-hl7's mllp_send on a file; the (MSA-1, MSA-2) of every ACK it printed."""
    assert MLLP_SEND.exists(), "mllp_send comes with the hl7 package (a project dependency)"
    run = subprocess.run([str(MLLP_SEND), "--port", str(port), "--file", str(path), *options, "127.0.0.1"],
                         capture_output=True, timeout=60)
    assert run.returncode == 0, run.stderr.decode(errors="replace")
    return [msa(block.split(b"\x0b", 1)[1]) for block in run.stdout.split(b"\x1c") if b"\x0b" in block]


@pytest.fixture()
def peer():
    running = DownstreamPeer("AA")
    yield running
    running.close()


@pytest.fixture()
def subprocess_listener(peer, tmp_path):
    """The listener as a process of its own, forwarding to `peer`; its log in tmp_path/listener.log."""
    port = free_port()
    proc = start_listener(port, tmp_path / "listener.log", {"LABINTERP_MLLP_FORWARD": peer.address,
                                                            "LABINTERP_MLLP_FORWARD_TIMEOUT": "2"})
    try:
        wait_listening(port, proc)
        yield port, proc, tmp_path / "listener.log"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


# --- python-hl7's mllp_send as the sender ----------------------------------------------------------------

def test_mllp_send_with_the_real_examples(subprocess_listener, peer):
    port, _, _ = subprocess_listener
    for name, control_id in ((GHH, "CNTRL-3456"), (OLIS, "20169838")):
        # --loose reads a file of CR-separated messages, as the examples are; it strips the last CR.
        assert mllp_send(port, example_path(name), "--loose") == [("AA", control_id)]
        assert peer.acked[-1] == example(name).rstrip(b"\r")  # nothing of ours in them: passed on as sent


def test_mllp_send_with_our_analytes_gets_each_enriched_downstream(subprocess_listener, peer, tmp_path):
    port, _, _ = subprocess_listener
    messages = [oru(obx(1, K, "3.1"), control_id="K-1"), oru(obx(1, CA, "11.0"), control_id="CA-1"),
                oru(obx(1, B12, "<^150", value_type="SN"), control_id="B12-1"),
                oru(obx(1, MG, "0.8"), control_id="MG-1")]
    path = tmp_path / "messages.mllp"
    path.write_bytes(b"".join(frame(m) for m in messages))  # mllp_send splits a stream of frames
    assert mllp_send(port, path) == [("AA", "K-1"), ("AA", "CA-1"), ("AA", "B12-1"), ("AA", "MG-1")]
    # mllp_send strips each frame's last CR; the rest arrives as we enrich it.
    assert peer.acked == [enriched(m.rstrip(b"\r")) for m in messages]
    flags = [[s.split(b"|")[8] for s in segments(m) if s.startswith(b"OBX")][0] for m in peer.acked]
    assert flags == [b"L", b"H", b"L", b"LL"]


def test_mllp_send_is_told_ae_when_the_downstream_refuses(subprocess_listener, peer, tmp_path):
    port, _, _ = subprocess_listener
    path = tmp_path / "one.mllp"
    path.write_bytes(frame(oru(obx(1, K, "3.1"), control_id="REFUSED-1")))
    peer.behaviour = "AE"
    assert mllp_send(port, path) == [("AE", "REFUSED-1")]
    peer.behaviour = "AR"
    assert mllp_send(port, path) == [("AR", "REFUSED-1")]


# --- every outcome, in process ----------------------------------------------------------------------------

@pytest.mark.parametrize("behaviour, code, outcome, text", [
    ("AA", "AA", "delivered", None),
    ("CA", "AA", "delivered", None),
    ("AE", "AE", "downstream_error", b"answered AE"),
    ("AR", "AR", "downstream_rejected", b"answered AR"),
    ("stall", "AE", "downstream_timeout", b"did not acknowledge within 1 s"),
    ("drop", "AE", "downstream_dropped", b"closed the connection"),
    ("garbage", "AE", "downstream_invalid", b"is not an acknowledgement"),
    ("wrong_id", "AE", "downstream_invalid", b"acknowledges another message"),
])
def test_the_sender_hears_what_the_downstream_said(peer, behaviour, code, outcome, text):
    peer.behaviour = behaviour
    listener = ThreadedListener(forward=("127.0.0.1", peer.port), forward_timeout=1.0)
    counter = {"ack": code, "outcome": outcome}
    before = REGISTRY.get_sample_value("labinterp_mllp_messages_total", counter) or 0
    try:
        raw = oru(obx(1, K, "3.1"), control_id=f"OUT-{behaviour}")
        ack = mllp_exchange(listener.port, frame(raw))
        assert msa(ack) == (code, f"OUT-{behaviour}")
        assert (b"\rERR|" in ack) == (code != "AA") and (text is None or text in ack)
        assert peer.received[-1] == enriched(raw)
        assert REGISTRY.get_sample_value("labinterp_mllp_messages_total", counter) == before + 1
    finally:
        listener.close()


def test_an_unreachable_downstream_and_no_downstream_at_all_give_ae():
    closed = free_port()
    for listener, text in ((ThreadedListener(forward=("127.0.0.1", closed)), b"could not be reached"),
                           (ThreadedListener(), b"no receiving system is configured")):
        try:
            ack = mllp_exchange(listener.port, frame(oru(obx(1, K, "3.1"), control_id="NOWHERE")))
            assert msa(ack) == ("AE", "NOWHERE") and text in ack and b"\rERR|" in ack
        finally:
            listener.close()


def test_a_message_that_is_not_an_oru_is_forwarded_unchanged(peer):
    listener = ThreadedListener(forward=("127.0.0.1", peer.port))
    try:
        adt = oru(obx(1, K, "3.1"), message_type="ADT^A08", control_id="ADT-1")
        v26 = oru(obx(1, K, "3.1"), version="2.6", control_id="V26-1")
        for raw in (adt, v26):
            assert msa(mllp_exchange(listener.port, frame(raw)))[0] == "AA"
        assert peer.acked[-2:] == [adt, v26]
    finally:
        listener.close()


def test_after_ae_the_sender_resends_and_gets_aa_once_delivered(peer):
    peer.behaviour = lambda message, n: "AE" if n == 0 else "AA"
    listener = ThreadedListener(forward=("127.0.0.1", peer.port))
    raw = oru(obx(1, K, "3.1"), control_id="AGAIN-1")
    try:
        with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as sock:
            sock.sendall(frame(raw))
            assert msa(read_frame(sock)) == ("AE", "AGAIN-1")
            sock.sendall(frame(raw))
            assert msa(read_frame(sock)) == ("AA", "AGAIN-1")
        assert len(peer.received) == 2 and peer.acked == [enriched(raw)]
    finally:
        listener.close()


def test_one_downstream_connection_per_sender_in_order_and_renewed_when_the_peer_closes_it(peer):
    listener = ThreadedListener(forward=("127.0.0.1", peer.port))
    try:
        with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as sock:
            for n in range(20):
                sock.sendall(frame(oru(obx(1, K, "3.1"), control_id=f"SEQ-{n}")))
                assert msa(read_frame(sock)) == ("AA", f"SEQ-{n}")
            assert peer.connections == 1
            peer.behaviour = "AA_close"  # answers, then closes the connection while it is idle
            sock.sendall(frame(oru(obx(1, K, "3.1"), control_id="SEQ-20")))
            assert msa(read_frame(sock)) == ("AA", "SEQ-20")
            time.sleep(0.2)
            peer.behaviour = "AA"
            sock.sendall(frame(oru(obx(1, K, "3.1"), control_id="SEQ-21")))
            assert msa(read_frame(sock)) == ("AA", "SEQ-21")  # a new connection, not an AE
        assert peer.connections == 2
        assert [m.split(b"|")[9] for m in peer.acked] == [f"SEQ-{n}".encode() for n in range(22)]
    finally:
        listener.close()


def test_connections_over_the_limit_are_closed_at_once():
    listener = ThreadedListener(max_connections=2)
    before = REGISTRY.get_sample_value("labinterp_mllp_connections_total", {"event": "refused"}) or 0
    try:
        first = socket.create_connection(("127.0.0.1", listener.port), timeout=5)
        second = socket.create_connection(("127.0.0.1", listener.port), timeout=5)
        time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", listener.port), timeout=5) as third:
            assert third.recv(100) == b""  # closed without a word
        first.close()
        time.sleep(0.2)
        assert msa(mllp_exchange(listener.port, frame(oru(obx(1, K, "3.1")))))[0] == "AE"  # a place again
        second.close()
        assert REGISTRY.get_sample_value("labinterp_mllp_connections_total", {"event": "refused"}) == before + 1
    finally:
        listener.close()


def test_a_peer_outside_the_allowed_networks_is_closed_unread():
    from service.config import allowed_networks

    listener = ThreadedListener(allow=allowed_networks(("10.0.0.0/8", "::1/128")))
    before = REGISTRY.get_sample_value("labinterp_mllp_connections_total", {"event": "not_allowed"}) or 0
    try:
        with socket.create_connection(("127.0.0.1", listener.port), timeout=5) as sock:
            try:
                sock.sendall(frame(oru(obx(1, K, "3.1"))))
                answer = sock.recv(100)
            except ConnectionResetError:  # closed unread while the message was on its way
                answer = b""
        assert answer == b""  # no ACK: nothing was read
        assert REGISTRY.get_sample_value("labinterp_mllp_connections_total", {"event": "not_allowed"}) == before + 1
    finally:
        listener.close()


def test_the_allowed_networks_default_to_this_host_and_are_checked_at_start_up():
    from service.config import Settings
    from service.hl7v2.listener import ListenerConfig

    default = ListenerConfig.from_settings(Settings.from_env({}), "0.0.0.0")
    assert default.allows(("127.0.0.1", 5000)) and default.allows(("::1", 5000, 0, 0))
    assert default.allows(("::ffff:127.0.0.1", 5000, 0, 0))
    assert not default.allows(("10.1.2.3", 5000)) and not default.allows(("192.168.0.9", 5000))
    lab = ListenerConfig.from_settings(Settings.from_env({"LABINTERP_MLLP_ALLOW": "10.1.0.0/16, 192.168.7.8"}), "0.0.0.0")
    assert lab.allows(("10.1.200.3", 5000)) and lab.allows(("192.168.7.8", 1)) and not lab.allows(("127.0.0.1", 1))
    with pytest.raises(ValueError, match=r"LABINTERP_MLLP_ALLOW .* not 'lab-net'"):
        Settings.from_env({"LABINTERP_MLLP_ALLOW": "10.0.0.0/8,lab-net"})


def test_an_idle_connection_is_closed_after_the_idle_timeout():
    listener = ThreadedListener(idle_timeout=0.5)
    try:
        with socket.create_connection(("127.0.0.1", listener.port), timeout=5) as sock:
            started = time.monotonic()
            assert sock.recv(100) == b""
            assert 0.4 < time.monotonic() - started < 3
    finally:
        listener.close()


def test_stopping_lets_the_message_in_flight_be_delivered_and_answered(peer):
    peer.behaviour, peer.stall_seconds = "slow", 1.0
    listener = ThreadedListener(forward=("127.0.0.1", peer.port), forward_timeout=5.0)
    answer: dict = {}

    def send() -> None:
        answer["ack"] = mllp_exchange(listener.port, frame(oru(obx(1, K, "3.1"), control_id="IN-FLIGHT")))

    sender = threading.Thread(target=send)
    idle = socket.create_connection(("127.0.0.1", listener.port), timeout=5)
    try:
        sender.start()
        peer.wait_received(1)
        listener.stop()  # returns once the message in flight was answered
        sender.join(10)
        assert msa(answer["ack"]) == ("AA", "IN-FLIGHT") and len(peer.acked) == 1
        assert idle.recv(100) == b""  # the idle connection was closed
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", listener.port), timeout=2).recv(1)
    finally:
        idle.close()
        listener.close()


def test_the_forward_latency_is_measured(peer):
    listener = ThreadedListener(forward=("127.0.0.1", peer.port))
    before = REGISTRY.get_sample_value("labinterp_mllp_forward_seconds_count", {"ack": "AA"}) or 0
    try:
        for n in range(3):
            mllp_exchange(listener.port, frame(oru(obx(1, K, "3.1"), control_id=f"LAT-{n}")))
        assert REGISTRY.get_sample_value("labinterp_mllp_forward_seconds_count", {"ack": "AA"}) == before + 3
    finally:
        listener.close()


# --- no patient data in the logs ----------------------------------------------------------------------------

PHI = ("QUIXOTE", "ZEBULON", "MRN998877", "19470229", "3.14159", "CTRL-SECRET-4242", "ORD-ACC-5566")


def test_logs_say_what_happened_to_each_message_and_nothing_it_held(subprocess_listener, peer):
    port, proc, log_path = subprocess_listener
    pid = "PID|1||MRN998877^^^HOSP^MR||QUIXOTE^ZEBULON||19470229|M"
    obr = "OBR|1|ORD-ACC-5566|FIL|24323-8^Panel^LN|||20261119080000+0100"
    raw = oru(obx(1, K, "3.14159"), control_id="CTRL-SECRET-4242", pid=pid, obr=obr)
    assert msa(mllp_exchange(port, frame(raw)))[0] == "AA"
    peer.behaviour = "AE"
    assert msa(mllp_exchange(port, frame(raw)))[0] == "AE"
    peer.behaviour = "drop"
    assert msa(mllp_exchange(port, frame(raw)))[0] == "AE"
    broken = raw.replace(b"\rPID|", b"\r\x00ID|")
    assert msa(mllp_exchange(port, frame(broken)))[0] == "AR"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:  # half a frame, then silence
        sock.sendall(b"\x0b" + raw[:200])
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    text = log_path.read_text(encoding="utf-8", errors="replace")
    for secret in PHI:
        assert secret not in text, secret
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    outcomes = [(r["ack"], r["outcome"]) for r in lines if r.get("message") == "mllp message"]
    assert outcomes == [("AA", "delivered"), ("AE", "downstream_error"), ("AE", "downstream_dropped"),
                        ("AR", "unparseable")]
    digests = {r["control_id_sha256"] for r in lines if r.get("message") == "mllp message"}
    import hashlib

    assert digests == {hashlib.sha256(b"CTRL-SECRET-4242").hexdigest()[:16]}
