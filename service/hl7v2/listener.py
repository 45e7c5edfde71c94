"""The MLLP listener: receives HL7 v2 messages, forwards each one downstream (an ORU^R01 enriched,
anything else unchanged) and only then answers the sender, so no message is lost.

    python -m service.hl7v2.listener     (labinterp-serve starts it beside gunicorn)

The sender gets AA only after the downstream system (LABINTERP_MLLP_FORWARD) answered AA (or CA).
A downstream AE, a timeout, a dropped or refused connection, or no downstream configured at all, give
the sender AE: it keeps the message and sends it again. A downstream AR gives AR (resending cannot
help), and so do bytes we cannot read (not ER7, too large, a frame without its start byte). Every
error ACK carries an ERR segment. Logs say what happened to each message, never what it held.

Built on python-hl7's asyncio MLLP streams (hl7.mllp): start_hl7_server and open_hl7_connection give
the StreamReader/Writer pairs; frames are read here with a size bound, timeouts and recovery.
"""
from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import hl7.mllp

from ..config import IPNetwork, Settings, allowed_networks, forward_address
from ..core.errors import KnowledgeError
from ..core.knowledge import Knowledge, load_knowledge
from ..core.report import PanelReport
from ..ops import logs, metrics
from .ack import ACCEPTED, ERROR, REJECTED, AckError, build_ack, read_ack
from .enrich import NotInterpretable, enrich
from .er7 import Er7Error, control_id_of, read_header, read_message

log = logging.getLogger("labinterp.mllp")
START, END = b"\x0b", b"\x1c\x0d"  # MLLP: <VT> message <FS><CR>
BETWEEN_FRAMES = b"\r\n \t"  # stray bytes some senders put between frames, skipped
HEAD_KEPT = 4096  # of a message too large to read, enough to find its MSH and echo its control id
ACK_LIMIT = 65536  # the largest acknowledgement read from downstream
STOP_MARGIN = 1.0  # seconds past the forward timeout that stopping waits for the messages in flight
SUCCESS = {"AA": ACCEPTED, "CA": ACCEPTED, "AR": REJECTED, "CR": REJECTED}  # downstream code -> ours; else AE


@dataclass(frozen=True)
class ListenerConfig:
    host: str
    port: int
    forward: tuple[str, int] | None
    forward_timeout: float
    read_timeout: float
    idle_timeout: float
    max_connections: int
    max_bytes: int
    max_results: int
    allow: tuple[IPNetwork, ...] = allowed_networks(Settings().mllp_allow)

    @classmethod
    def from_settings(cls, settings: Settings, host: str) -> ListenerConfig:
        return cls(host, settings.mllp_port, forward_address(settings.mllp_forward) if settings.mllp_forward else None,
                   settings.mllp_forward_timeout, settings.mllp_read_timeout, settings.mllp_idle_timeout,
                   settings.mllp_max_connections, settings.max_body_bytes, settings.max_results,
                   allowed_networks(settings.mllp_allow))

    def allows(self, address: Any) -> bool:
        """Whether a peer (a socket's peername) is in LABINTERP_MLLP_ALLOW."""
        try:
            ip = ipaddress.ip_address(address[0].split("%")[0]) if isinstance(address, tuple) else None
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return ip is not None and any(ip in network for network in self.allow)


class DownstreamError(Exception):
    """The downstream system did not acknowledge; `outcome` names how (a metric label)."""

    def __init__(self, outcome: str, text: str):
        super().__init__(text)
        self.outcome, self.text = outcome, text


class Downstream:
    """One MLLP connection to the downstream system, opened when first needed and again after any
    failure; one per sender connection, so each sender's messages arrive in the order it sent them."""

    def __init__(self, address: tuple[str, int], timeout: float):
        self.address, self.timeout = address, timeout
        self.reader: hl7.mllp.HL7StreamReader | None = None
        self.writer: hl7.mllp.HL7StreamWriter | None = None

    async def exchange(self, message: bytes) -> bytes:
        """Send one message and return the downstream's answer (the bytes inside its frame), all of it
        (connecting included) within the forward timeout; DownstreamError otherwise."""
        try:
            async with asyncio.timeout(self.timeout):
                if self.writer is None or self.writer.is_closing() or self.reader is None or self.reader.at_eof():
                    await self._connect()  # a connection the peer closed while idle is replaced before use
                assert self.reader is not None and self.writer is not None
                self.writer.writeblock(message)
                await self.writer.drain()
                return await self.reader.readblock()
        except DownstreamError:
            raise
        except TimeoutError:
            unreachable = self.writer is None
            await self.close()  # a late answer must not be taken for the next message's
            if unreachable:
                raise DownstreamError("downstream_unreachable", "the receiving system could not be reached") from None
            raise DownstreamError("downstream_timeout", f"the receiving system did not acknowledge within "
                                                        f"{self.timeout:g} s") from None
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            await self.close()
            raise DownstreamError("downstream_dropped", "the receiving system closed the connection before "
                                                        "acknowledging") from None
        except (ValueError, hl7.mllp.InvalidBlockError):
            await self.close()
            raise DownstreamError("downstream_invalid", "the receiving system's answer is not an MLLP-framed "
                                                        "acknowledgement") from None

    async def _connect(self) -> None:
        await self.close()
        host, port = self.address
        try:
            self.reader, self.writer = await hl7.mllp.open_hl7_connection(host, port, limit=ACK_LIMIT)
        except OSError:
            raise DownstreamError("downstream_unreachable", "the receiving system could not be reached") from None

    async def close(self) -> None:
        writer, self.reader, self.writer = self.writer, None, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass


@dataclass
class Answer:
    """What a message came to: the ACK for the sender, and the facts for the log and metrics."""

    ack: bytes
    code: str
    outcome: str
    control_id: str = ""
    forward_seconds: float | None = None
    reports: tuple[PanelReport, ...] = ()
    interpreted: int = 0


@dataclass
class _Connection:
    task: asyncio.Task[Any]
    busy: bool = False  # between the end of a frame and the ACK written for it


class _TooLarge(Exception):
    """A frame over the size limit, read to its end and dropped: its head and its size."""

    def __init__(self, head: bytes, size: int):
        self.head, self.size = head, size

    def __len__(self) -> int:
        return self.size


@dataclass
class Listener:
    config: ListenerConfig
    kb: Knowledge
    server: asyncio.Server | None = None
    connections: dict[asyncio.Task[Any], _Connection] = field(default_factory=dict)
    stopping: bool = False

    async def start(self) -> None:
        # The reader's limit bounds a message (read after its start byte): bigger ones are skipped.
        self.server = await hl7.mllp.start_hl7_server(self._serve, self.config.host, self.config.port,
                                                      limit=self.config.max_bytes)
        where = "no forward (AE to every message)" if self.config.forward is None else \
            "forwarding to {}:{}".format(*self.config.forward)
        log.info("MLLP listening on %s:%s for peers in %s, %s", self.config.host, self.port,
                 ", ".join(map(str, self.config.allow)), where)
        if self.config.forward is None:
            log.warning("LABINTERP_MLLP_FORWARD is not set: no message can be delivered, so every message is "
                        "answered AE (the sender keeps it and resends)")

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Take no new connection; close the idle ones; let each message in flight be forwarded and
        answered (a sender whose message was cut mid-frame got no ACK and sends it again)."""
        self.stopping = True
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections.values()):
            if not conn.busy:
                conn.task.cancel()
        tasks = [c.task for c in self.connections.values()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.config.forward_timeout + STOP_MARGIN)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)

    async def _serve(self, reader: hl7.mllp.HL7StreamReader, writer: hl7.mllp.HL7StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        peer = _peer(writer)
        if not self.config.allows(writer.get_extra_info("peername")):
            metrics.observe_connection("not_allowed")
            log.warning("MLLP connection closed: the peer is not in LABINTERP_MLLP_ALLOW", extra={"peer": peer})
            writer.close()
            return
        if self.stopping or len(self.connections) >= self.config.max_connections:
            metrics.observe_connection("refused")
            log.warning("MLLP connection refused: %s", "stopping" if self.stopping else
                        f"{self.config.max_connections} connections already open", extra={"peer": peer})
            writer.close()
            return
        conn = self.connections[task] = _Connection(task)
        metrics.observe_connection("accepted")
        downstream = Downstream(self.config.forward, self.config.forward_timeout) if self.config.forward else None
        try:
            while not self.stopping:
                frame = await self._next_frame(reader, peer)
                if frame is None:
                    return
                conn.busy = True
                answer = await self._answer(frame, downstream)
                self._record(answer, len(frame), peer)
                writer.writeblock(answer.ack)
                await writer.drain()
                conn.busy = False
        except (ConnectionError, OSError):
            pass  # the sender went away; whatever it had not been answered for, it sends again
        except Exception as exc:
            log.error("MLLP connection failed (%s); closed without acknowledging", type(exc).__name__,
                      extra={"peer": peer})
        finally:
            del self.connections[task]
            if downstream is not None:
                await downstream.close()
            writer.close()

    async def _next_frame(self, reader: hl7.mllp.HL7StreamReader, peer: str) -> bytes | _TooLarge | None:
        """The next frame's content, _TooLarge for one over the limit, or None when the connection is
        done (closed by the sender, or silent too long: idle between frames or in the middle of one)."""
        try:
            async with asyncio.timeout(self.config.idle_timeout):
                first = b" "
                while first and first in BETWEEN_FRAMES:
                    first = await reader.read(1)
        except TimeoutError:
            metrics.observe_connection("idle_timeout")
            return None
        if not first:
            return None
        try:
            async with asyncio.timeout(self.config.read_timeout):
                return first + await self._until_end(reader)
        except TimeoutError:
            metrics.observe_connection("read_timeout")
            log.warning("MLLP frame not completed within %s s; connection closed, nothing acknowledged",
                        self.config.read_timeout, extra={"peer": peer})
            return None
        except _TooLarge as too_large:
            return too_large
        except asyncio.IncompleteReadError:
            return None  # closed mid-frame: there is nothing to acknowledge

    async def _until_end(self, reader: hl7.mllp.HL7StreamReader) -> bytes:
        """Up to the end of the frame (without <FS><CR>); a frame over the reader's limit is read to its
        end and dropped, keeping its head, so the connection can go on with the next one."""
        head: bytes | None = None
        dropped = 0
        while True:
            try:
                data = await reader.readuntil(END)
            except asyncio.LimitOverrunError as exc:
                chunk = await reader.readexactly(exc.consumed)
                head = chunk[:HEAD_KEPT] if head is None else head
                dropped += len(chunk)
                continue
            if head is not None:
                raise _TooLarge(head, dropped + len(data))
            return data[:-len(END)]

    async def _answer(self, frame: bytes | _TooLarge, downstream: Downstream | None) -> Answer:
        if isinstance(frame, _TooLarge):
            return _reject(frame.head, "too_large", AckError(
                f"the message is larger than {self.config.max_bytes} bytes", "102"))
        if not frame.startswith(START):
            return _reject(frame, "bad_frame", AckError(
                "the MLLP frame does not begin with <VT> (0x0B)", "100"))
        data = frame[frame.rindex(START) + 1:]  # a <VT> inside: an abandoned frame, then this one
        try:
            msg = read_message(data)
        except Er7Error as exc:
            return _reject(data, "unparseable", AckError(exc.text, exc.code, exc.where))
        reports: tuple[PanelReport, ...] = ()
        outgoing, interpreted = data, 0
        try:
            if msg.message_type == ("ORU", "R01"):
                enriched = enrich(msg, self.kb, self.config.max_results)
                outgoing, reports, interpreted = enriched.raw, enriched.reports, enriched.interpreted
        except NotInterpretable:
            pass  # forwarded as it came: another version or character set is not ours to edit
        except Exception as exc:  # a bug of ours must not hold a laboratory's results back
            log.error("enrichment failed (%s); the message is forwarded unchanged", type(exc).__name__)
        if downstream is None:
            return Answer(build_ack(msg.header, ERROR, AckError(
                "no receiving system is configured (LABINTERP_MLLP_FORWARD); the message was not delivered")),
                ERROR, "no_forward", msg.control_id)
        return await self._forward(msg.header, msg.control_id, outgoing, downstream, reports, interpreted)

    async def _forward(self, header: str, control_id: str, outgoing: bytes, downstream: Downstream,
                       reports: tuple[PanelReport, ...], interpreted: int) -> Answer:
        started = time.perf_counter()
        try:
            answer = read_ack(await downstream.exchange(outgoing))
        except DownstreamError as exc:
            metrics.observe_forward("none", time.perf_counter() - started)
            return Answer(build_ack(header, ERROR, AckError(f"{exc.text}; the message was not delivered")), ERROR,
                          exc.outcome, control_id, time.perf_counter() - started)
        seconds = time.perf_counter() - started
        metrics.observe_forward(answer.code if answer else "invalid", seconds)
        if answer is None or answer.control_id != control_id:
            await downstream.close()  # out of step with it: start afresh
            why = "is not an acknowledgement" if answer is None else "acknowledges another message (MSA-2)"
            return Answer(build_ack(header, ERROR, AckError(f"the receiving system's answer {why}")), ERROR,
                          "downstream_invalid", control_id, seconds)
        code = SUCCESS.get(answer.code, ERROR)
        if code == ACCEPTED:
            return Answer(build_ack(header, ACCEPTED), ACCEPTED, "delivered", control_id, seconds, reports, interpreted)
        outcome = "downstream_rejected" if code == REJECTED else "downstream_error"
        return Answer(build_ack(header, code, AckError(f"the receiving system answered {answer.code[:2]}")), code,
                      outcome, control_id, seconds)

    def _record(self, answer: Answer, size: int, peer: str) -> None:
        """One log line and the metrics of a message: what happened, never what it held."""
        metrics.observe_mllp(answer.code, answer.outcome)
        if answer.reports:
            metrics.observe_reports(answer.reports)
        level = logging.INFO if answer.code == ACCEPTED else logging.WARNING
        if log.isEnabledFor(level):
            log.log(level, "mllp message", extra={
                "peer": peer, "ack": answer.code, "outcome": answer.outcome, "bytes": size,
                "results": answer.interpreted, "control_id_sha256": _digest(answer.control_id),
                "forward_ms": None if answer.forward_seconds is None else round(answer.forward_seconds * 1000, 2)})


def _reject(data: bytes, outcome: str, error: AckError) -> Answer:
    """AR, echoing the control id when the bytes begin with an MSH we can read."""
    header = read_header(data)
    return Answer(build_ack(header, REJECTED, error), REJECTED, outcome, control_id_of(header))


def _digest(control_id: str) -> str | None:
    """A short digest of MSH-10: some senders build control ids from accession numbers, so the id
    itself is not logged; an operator can digest the id they look for and search the logs for it."""
    return hashlib.sha256(control_id.encode()).hexdigest()[:16] if control_id else None


def _peer(writer: hl7.mllp.HL7StreamWriter) -> str:
    address = writer.get_extra_info("peername")
    return f"{address[0]}:{address[1]}" if isinstance(address, tuple) else "?"


async def serve(config: ListenerConfig, kb: Knowledge) -> None:
    """Run until SIGTERM or SIGINT, then stop as Listener.stop says."""
    listener = Listener(config, kb)
    await listener.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("MLLP listener stopping: finishing the messages in flight")
    await listener.stop()


def main() -> int:
    logs.configure(logging.getLogger("labinterp"))
    try:
        settings = Settings.from_env()
        kb = load_knowledge(settings.ranges_dir)
    except (ValueError, KnowledgeError) as exc:  # named, not a traceback
        log.error("the MLLP listener cannot start: %s", exc)
        return 2
    if not settings.mllp:
        log.info("LABINTERP_MLLP=off: the MLLP listener does not start")
        return 0
    try:
        asyncio.run(serve(ListenerConfig.from_settings(settings, os.environ.get("HOST", "127.0.0.1")), kb))
    except OSError as exc:  # the port is taken, the host unknown
        log.error("the MLLP listener cannot listen on %s:%s (%s)", os.environ.get("HOST", "127.0.0.1"),
                  settings.mllp_port, exc.strerror or type(exc).__name__)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
