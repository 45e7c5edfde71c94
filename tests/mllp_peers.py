"""MLLP peers for the tests, each on loopback in a thread of its own with its own event loop.

- DownstreamPeer: the receiving system (an EHR's inbound interface). It answers each message as its
  behaviour says: an ACK built by python-hl7 (AA, AE, AR), or it stalls, drops the connection, sends
  something that is no ACK, or acknowledges another control id. It records every message it got.
- ThreadedListener: our own Listener (service/hl7v2/listener.py) in process, for fast tests.
- mllp_exchange: a plain blocking sender of raw frames, for what python-hl7's client cannot send.
"""
from __future__ import annotations

import asyncio
import socket
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import hl7

VT, END = b"\x0b", b"\x1c\x0d"
# AA | AE | AR | CA: that ACK; AA_close: AA, then it closes the connection; slow: AA after stall_seconds;
# stall: no answer; drop: closes the connection unanswered; garbage: an answer that is no ACK;
# wrong_id: AA for another control id.
Behaviour = str


class _LoopThread:
    """An asyncio loop running in a daemon thread; `call` runs a coroutine on it and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        """Cancel what still runs on the loop (a stalled answer, say), then stop it."""
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self.loop.is_running():
            self.call(cancel_all())
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
        self.loop.close()


def ack_bytes(message: bytes, code: str, control_id: str | None = None) -> bytes:
    """python-hl7's own ACK of a message (MSA-2 replaced when `control_id` is given)."""
    parsed = hl7.parse(message.decode("latin-1"))
    with warnings.catch_warnings():  # create_ack uses datetime.utcnow()
        warnings.simplefilter("ignore", DeprecationWarning)
        ack = parsed.create_ack(code)
    if control_id is not None:
        ack.segment("MSA").assign_field(control_id, 2)
    return str(ack).encode("latin-1")


class DownstreamPeer:
    """The downstream system. `behaviour` is a code or a function of (message, n) -> code, n counting
    messages from 0; `received` holds every message it read (whatever it then did)."""

    def __init__(self, behaviour: Behaviour | Callable[[bytes, int], Behaviour] = "AA", stall_seconds: float = 60):
        self.behaviour = behaviour
        self.stall_seconds = stall_seconds
        self.received: list[bytes] = []
        self.acked: list[bytes] = []  # the messages it answered AA or CA
        self.connections = 0
        self.lock = threading.Lock()
        self._loop = _LoopThread()
        self.server = self._loop.call(asyncio.start_server(self._serve, "127.0.0.1", 0, limit=32 * 1024 * 1024))
        self.port: int = self.server.sockets[0].getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"

    def _choose(self, message: bytes, n: int) -> Behaviour:
        return self.behaviour(message, n) if callable(self.behaviour) else self.behaviour

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self.lock:
            self.connections += 1
        try:
            while True:
                frame = await reader.readuntil(END)
                message = frame[frame.index(VT) + 1:-len(END)]
                with self.lock:
                    n = len(self.received)
                    self.received.append(message)
                what = self._choose(message, n)
                if what in ("stall", "slow"):
                    await asyncio.sleep(self.stall_seconds)
                    if what == "stall":
                        continue
                    what = "AA"
                if what == "drop":
                    return
                if what == "garbage":
                    writer.write(VT + b"this is not an acknowledgement" + END)
                elif what == "wrong_id":
                    writer.write(VT + ack_bytes(message, "AA", "NOT-THIS-ONE") + END)
                else:
                    code = what.partition("_")[0]
                    if code in ("AA", "CA"):  # recorded before it is sent: the sender may look at once
                        with self.lock:
                            self.acked.append(message)
                    writer.write(VT + ack_bytes(message, code) + END)
                await writer.drain()
                if what == "AA_close":
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        self.server.close()
        self._loop.close()

    def wait_received(self, count: int, seconds: float = 10) -> None:
        deadline = time.monotonic() + seconds
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"the peer got {len(self.received)} of {count} messages"
            time.sleep(0.01)


class ThreadedListener:
    """service.hl7v2.listener.Listener on a free loopback port, in a thread."""

    def __init__(self, **overrides: Any):
        from service.core import default_knowledge
        from service.hl7v2.listener import Listener, ListenerConfig

        defaults = {"host": "127.0.0.1", "port": 0, "forward": None, "forward_timeout": 2.0, "read_timeout": 2.0,
                        "idle_timeout": 30.0, "max_connections": 16, "max_bytes": 1_048_576, "max_results": 100}
        self.config = ListenerConfig(**{**defaults, **overrides})
        self._loop = _LoopThread()
        self.listener = Listener(self.config, default_knowledge())
        self._loop.call(self.listener.start())
        self.port = self.listener.port

    def stop(self) -> None:
        self._loop.call(self.listener.stop(), timeout=60)

    def close(self) -> None:
        try:
            self.stop()
        finally:
            self._loop.close()


def mllp_exchange(port: int, data: bytes, timeout: float = 10, read: bool = True) -> bytes:
    """Send raw bytes (framed or not) on a new connection; return what came back up to the first
    <FS><CR> (or until the peer closed, or b"" on timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_frame(sock, timeout) if read else b""


def read_frame(sock: socket.socket, timeout: float = 10) -> bytes:
    """The content of the next frame on a socket, or what there was when it closed or timed out.
    A peer that closes with our bytes still unread resets the connection (RST): that is a close too."""
    sock.settimeout(timeout)
    got = b""
    deadline = time.monotonic() + timeout
    while END not in got and time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):  # a reset: closed unread, as good as a close here
            break
        if not chunk:
            break
        got += chunk
    if VT in got and END in got:
        return got[got.index(VT) + 1:got.index(END)]
    return got


def frame(message: bytes) -> bytes:
    return VT + message + END


def msa(ack: bytes) -> tuple[str, str]:
    """(MSA-1, MSA-2) of an acknowledgement."""
    parsed = hl7.parse(ack.decode("latin-1"))
    segment = parsed.segment("MSA")
    return str(segment(1)), str(segment(2)) if len(segment) > 2 else ""
