"""ER7, the pipe-and-hat encoding of HL7 v2: read for what we interpret, edited in place.

A message is never re-serialised. Its segments are located in the original bytes; python-hl7 parses
a text view of them to read fields (unescaped); an edit replaces one whole segment or inserts new
ones between segments. Every segment left alone, and every field left alone inside an edited one,
goes out byte for byte as it came: escape sequences, character sets and Z-segments included.
"""
from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from collections.abc import Mapping, Sequence

import hl7
import hl7.containers
import hl7.util

# python-hl7 logs the whole field when it meets an escape sequence it cannot decode (its loggers are
# named by file path, so no logging configuration of ours would catch them): a patient's name, birth
# date or value would reach the logs. Off: what matters is said in our NTEs and ACKs instead.
hl7.util.logger.disabled = True
hl7.containers.logger.disabled = True

BOM = b"\xef\xbb\xbf"
TERMINATOR = re.compile(rb"\r\n|\r|\n")
SEGMENT_ID = re.compile(rb"[A-Z][A-Z0-9]{2}\Z")
BATCH_SEGMENTS = (b"FHS", b"BHS", b"BTS", b"FTS")
# HL7 table 0211 (MSH-18) -> the Python codec of a character set whose delimiters are single ASCII
# bytes that never occur inside another character, so the bytes can be split and edited safely.
# Multi-byte sets where they can (ISO 2022, GB 18030, Big 5, UTF-16) are not edited.
CODECS = {"": "ascii", "ASCII": "ascii", "UNICODE UTF-8": "utf-8",
          **{f"8859/{n}": f"iso8859-{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 15)}}

# How the text view is decoded. A message that declares no set (or ASCII) often holds UTF-8 anyway;
# one in a set we do not edit is read as Latin-1, which maps every byte and misreads no ASCII.
_READING = {"ascii": "utf-8", None: "latin-1"}


class Er7Error(ValueError):
    """The bytes are not an ER7 message we can read. `code` is from HL7 table 0357 (100 segment
    sequence error, 102 data type error, ...), `where` the ERR-2 location (segment id, sequence,
    field), `header` the MSH segment's text when it could be read, for the ACK to echo."""

    def __init__(self, text: str, code: str = "102", where: tuple[str, int, int] | None = None,
                 header: str | None = None):
        super().__init__(text)
        self.text, self.code, self.where, self.header = text, code, where, header


@dataclass(frozen=True)
class Span:
    """One segment in the original bytes: raw[start:end], then its terminator raw[end:term_end]."""

    start: int
    end: int
    term_end: int


@dataclass(frozen=True)
class Er7Message:
    raw: bytes
    spans: tuple[Span, ...]
    view: hl7.Message  # python-hl7's parse of the segments, view[i] being spans[i]
    encoding_chars: str  # MSH-2 as sent (component, repetition, escape, subcomponent)
    codec: str | None  # None: a character set whose bytes are not edited (see CODECS)

    def __len__(self) -> int:
        return len(self.spans)

    def segment_id(self, i: int) -> str:
        return str(self.view[i][0])

    def field(self, i: int, n: int, component: int = 1, repetition: int = 1, subcomponent: int = 1) -> str:
        """Field n of segment i (MSH-n for the MSH), unescaped; "" when absent."""
        try:
            return str(self.view[i].extract_field(1, n, repetition, component, subcomponent))
        except IndexError:
            return ""

    def repetitions(self, i: int, n: int) -> list[str]:
        """The repetitions of field n of segment i, each as sent (not unescaped)."""
        segment = self.view[i]
        if n >= len(segment) or not str(segment(n)):
            return []
        return [str(r) for r in segment(n)]

    def fields_raw(self, i: int) -> list[bytes]:
        """The fields of segment i as the original bytes (index 0 is the segment id)."""
        span = self.spans[i]
        return self.raw[span.start:span.end].split(self.field_separator)

    @property
    def field_separator(self) -> bytes:
        return self.raw[self.spans[0].start + 3:self.spans[0].start + 4]

    @property
    def header(self) -> str:
        """The MSH segment's text, to acknowledge the message."""
        return str(self.view[0])

    @property
    def control_id(self) -> str:
        return self.field(0, 10)

    @property
    def message_type(self) -> tuple[str, str]:
        return self.field(0, 9, 1), self.field(0, 9, 2)

    @property
    def version(self) -> str:
        return self.field(0, 12)

    @property
    def charset(self) -> str:
        return self.field(0, 18)

    def escape(self, text: str) -> bytes:
        """`text` as the bytes of a field value of this message: its own delimiters escaped with its
        own escape character (python-hl7's Message.escape), in its character set; a character the
        set cannot hold is written as its closest ASCII spelling, else `?`."""
        assert self.codec is not None, "not an editable character set"
        return _escaped(self.field_separator.decode("ascii") + self.encoding_chars, self.codec, text)

    def edited(self, replace: Mapping[int, bytes], insert_after: Mapping[int, Sequence[bytes]]) -> bytes:
        """The original bytes with segment i replaced by replace[i] and the segments insert_after[i]
        put right after segment i, each ended by segment i's own terminator (CR when it has none)."""
        if not replace and not insert_after:
            return self.raw
        out = [self.raw[:self.spans[0].start]]
        for i, span in enumerate(self.spans):
            terminator = self.raw[span.end:span.term_end]
            out.append(replace.get(i, self.raw[span.start:span.end]))
            for segment in insert_after.get(i, ()):
                out += [terminator or b"\r", segment]
            out.append(terminator)
            following = self.spans[i + 1].start if i + 1 < len(self.spans) else len(self.raw)
            out.append(self.raw[span.term_end:following])  # empty lines between segments, kept
        return b"".join(out)


@functools.lru_cache(maxsize=4096)  # the texts we write are the knowledge's notes: a small set that repeats
def _escaped(delimiters: str, codec: str, text: str) -> bytes:
    """`text` escaped for a message with these delimiters (field separator and MSH-2) and codec."""
    container = hl7.parse(f"MSH{delimiters}{delimiters[0]}")  # python-hl7 takes the separators from it
    out: list[bytes] = []
    for run in re.findall(r"[\x00-\x7f]+|[^\x00-\x7f]", " ".join(text.split())):
        try:
            out.append(str(container.escape(run)).encode("ascii") if run.isascii() else run.encode(codec))
        except UnicodeEncodeError:
            out.append(str(container.escape(_plain(run))).encode("ascii"))
    return b"".join(out)


_PLAIN = {"\u2264": "<=", "\u2265": ">=", "\u2013": "-", "\u2014": "-", "\u00b5": "u", "\u03bc": "u",
          "\u00d7": "x", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'}


def _plain(ch: str) -> str:
    """The closest ASCII spelling of a character (escaped afterwards like any other text)."""
    return _PLAIN.get(ch) or unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode() or "?"


def _delimiters(raw: bytes, start: int) -> tuple[int, bytes]:
    """The field separator and encoding characters of the MSH at raw[start:]; Er7Error if unusable."""
    if raw[start:start + 3] != b"MSH":
        if raw[start:start + 3] in BATCH_SEGMENTS:
            raise Er7Error("batches (FHS/BHS) are not accepted: send one message at a time", "200", ("MSH", 1, 1))
        raise Er7Error("the message does not begin with an MSH segment", "100", ("MSH", 1, 1))
    sep = raw[start + 3:start + 4]
    if len(sep) != 1 or not _is_delimiter(sep[0]):
        raise Er7Error("MSH-1, the field separator, is missing or not a punctuation character", "102", ("MSH", 1, 1))
    end = raw.find(sep, start + 4)
    first_line = TERMINATOR.search(raw, start)
    if end == -1 or (first_line is not None and first_line.start() < end):
        raise Er7Error("MSH-2, the encoding characters, is not followed by a field separator", "102", ("MSH", 1, 2))
    chars = raw[start + 4:end]
    if len(chars) not in (4, 5) or len(set(chars)) != len(chars) or sep[0] in chars or \
            not all(_is_delimiter(c) for c in chars):
        raise Er7Error("MSH-2 must hold four distinct encoding characters (such as ^~\\&), none of them the "
                       "field separator", "102", ("MSH", 1, 2))
    return sep[0], chars


def _is_delimiter(byte: int) -> bool:
    return 0x21 <= byte <= 0x7E and not chr(byte).isalnum()


def _spans(raw: bytes, start: int, field_sep: int) -> list[Span]:
    spans: list[Span] = []
    position = start
    for m in TERMINATOR.finditer(raw, start):
        if m.start() > position:
            spans.append(Span(position, m.start(), m.end()))
        elif spans:  # an empty line: it stays with the segment before it
            pass
        position = m.end()
    if position < len(raw):
        spans.append(Span(position, len(raw), len(raw)))
    for n, span in enumerate(spans):
        head = raw[span.start:min(span.start + 4, span.end)]  # a segment may be its id alone
        if not SEGMENT_ID.match(head[:3]) or (len(head) == 4 and head[3] != field_sep):
            raise Er7Error(f"segment {n + 1} does not begin with a segment id (three capitals or digits) and "
                           f"the field separator", "100", None)
        if n and head[:3] in (b"MSH", *BATCH_SEGMENTS):
            raise Er7Error(f"segment {n + 1} begins another message: send one message at a time", "100",
                           (head[:3].decode(), 1, 0))
    return spans


def read_header(raw: bytes) -> str | None:
    """The MSH segment's text when its delimiters can be read, else None: enough to acknowledge a
    message we cannot read otherwise."""
    try:
        start = _leading(raw)
        _delimiters(raw, start)
    except Er7Error:
        return None
    line = TERMINATOR.search(raw, start)
    return raw[start:line.start() if line else len(raw)].decode("latin-1")


def control_id_of(header: str | None) -> str:
    """MSH-10 of an MSH segment's text (read_header), as sent; "" when there is none."""
    fields = header.split(header[3]) if header else []
    return fields[9] if len(fields) > 9 else ""


def _leading(raw: bytes) -> int:
    """Where the MSH starts: after a byte-order mark and blank space, which are kept as they are."""
    start = len(BOM) if raw.startswith(BOM) else 0
    while start < len(raw) and raw[start] in b" \t\r\n":
        start += 1
    return start


def read_message(raw: bytes) -> Er7Message:
    """Locate the segments of one ER7 message and parse a view of them; Er7Error if it is not one."""
    start = _leading(raw)
    field_sep, chars = _delimiters(raw, start)
    header = read_header(raw)
    try:
        spans = _spans(raw, start, field_sep)
        msh = raw[spans[0].start:spans[0].end].split(bytes([field_sep]))
        charset = msh[17].decode("latin-1").split(chr(chars[1]))[0].strip().upper() if len(msh) > 17 else ""
        codec = CODECS.get(charset)
        reading = _READING.get(codec, codec or "latin-1")
        text = "\r".join(raw[s.start:s.end].decode(reading, "surrogateescape") for s in spans)
        view = hl7.parse(text)
    except Er7Error as exc:
        exc.header = header
        raise
    except (ValueError, IndexError) as exc:  # python-hl7 found no structure it could split
        raise Er7Error(f"the message could not be parsed ({type(exc).__name__})", "102", None, header) from None
    return Er7Message(raw, tuple(spans), view, chars.decode("ascii"), codec)


def hl7_time(text: str, default_offset: timedelta | None = None) -> datetime | None:
    """An HL7 TS/DTM value (YYYY[MM[DD[HH[MM[SS[.S...]]]]]][+/-ZZZZ]) as an aware datetime; None if
    empty; ValueError if it is not one. Without an offset, `default_offset` (else UTC) applies."""
    if not text:
        return None
    moment = hl7.parse_datetime(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone(default_offset or timedelta(0)))
    return moment
