"""One raw audit record: its header, its ``key=value`` fields and how values are encoded.

A line of ``audit.log`` is ``[node=NAME ]type=TYPE msg=audit(SECONDS.MILLIS:SERIAL): FIELDS``.
The header is parsed by :func:`parse_header`; the same function decides, for the full parser and
for the prefiltering scanner alike, whether a line is a record at all.

Fields (:func:`fields`) are found like Elastic's go-libaudit finds them: every ``key=value`` in
the text, where a value is either a double-quoted string (no ``"`` inside) or a run of bytes up
to the next space or quote. The ENRICHED log format appends resolved fields with upper-case
names (``UID="root"``) after a ``0x1d`` byte; they come out of the same tokenizer. When the
separator has been stripped on the way (syslog forwarding often does), the first resolved field
is glued to the last raw one (``key=(null)ARCH=x86_64``): :func:`fields` splits it off again.

Values of the fields the kernel logs as untrusted strings (``exe``, ``comm``, ``cwd``, ``name``,
``proctitle``, ``a0``...) are a quoted string, or upper-case hex when they contain a space, a
quote, a control byte or a byte above 0x7e. :func:`decode` turns either into text; the hex is
decoded only when it is valid (even length, ``0-9A-F``), as go-libaudit does, and anything else
is kept as it was written and reported by the caller.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from rarebird.timeutil import LAST_EPOCH_S

_HEADER = (
    rb"(?:node=([^ \n]{0,255}) )?type=([^ \n]{1,64}) msg=audit\((\d{1,20})\.(\d{1,9}):(\d{1,10})\):"
)
#: ``[node=NAME ]type=TYPE msg=audit(SECONDS.MILLIS:SERIAL):`` at the start of a line.
HEADER_RE = re.compile(_HEADER)
#: The same, at the start of any line of a buffer.
HEADER_LINE_RE = re.compile(b"(?m)^" + _HEADER)
#: The longest header before the stamp, and the longest stamp.
MAX_PREFIX = 5 + 255 + 1 + 5 + 64 + 5
MAX_STAMP = 6 + 20 + 1 + 9 + 1 + 10 + 2

#: ``key=value``: a quoted value, or bytes up to the next space, quote or 0x1d.
# A key starts only where a run of key characters starts (the look-behind): a key inside a run
# is followed by the same character as the whole run, so it can match only if the run does.
# Without it, a long run with no '=' is scanned again from each of its positions (quadratic:
# 40 s on one 100 kB line, issue 17); with it, each byte is looked at a bounded number of times.
FIELD_RE = re.compile(
    rb'(?<![A-Za-z0-9_\-\[\]])([A-Za-z0-9_\-\[\]]+)=("[^"\n\x1d]*"|[^ "\n\r\x1d]*)'
)

_HEX_RE = re.compile(rb"(?:[0-9A-F]{2})+")

#: Values go-libaudit treats as "no value".
_EMPTY = frozenset({b"", b"?", b"?,", b"(null)"})

#: The first resolved field of an ENRICHED SYSCALL record (used when 0x1d was stripped).
_GLUED_ARCH = b"ARCH="

SEPARATOR = b"\x1d"


@dataclass(frozen=True, slots=True)
class Header:
    """The parsed header of one record line."""

    node: bytes | None
    type: bytes
    seconds: int
    millis: int
    serial: int
    #: ``audit(SECONDS.MILLIS:SERIAL):`` exactly as written: with ``node`` it names the event
    stamp: bytes
    #: offset (in the line) where the fields begin
    body: int


def parse_header(line: bytes) -> Header | None:
    """The header of ``line``, or None when the line is not an audit record.

    >>> h = parse_header(b"node=web1 type=EOE msg=audit(1700000000.123:42): ")
    >>> h.node, h.type, h.seconds, h.millis, h.serial, h.stamp
    (b'web1', b'EOE', 1700000000, 123, 42, b'audit(1700000000.123:42):')
    >>> parse_header(b"type=SYSCALL msg=audit(17000") is None
    True
    """
    m = HEADER_RE.match(line)
    return None if m is None else header_from_match(m, 0)


def header_from_match(m: re.Match[bytes], line_start: int) -> Header | None:
    """The Header of a HEADER_RE / HEADER_LINE_RE match of a line starting at ``line_start``."""
    node, rtype, seconds, millis, serial_text = m.groups()
    serial = int(serial_text)
    secs, ms = int(seconds), int(millis)
    if serial > 0xFFFFFFFF or secs + ms // 1000 >= LAST_EPOCH_S:
        return None  # not a serial, or not a time: not an audit record
    return Header(
        node,
        rtype,
        secs,
        ms,
        serial,
        bytes(m.string[m.start(3) - 6 : m.end()]),
        m.end() - line_start,
    )


def fields(body: bytes) -> dict[bytes, bytes]:
    """Every ``key=value`` of a record body, raw (quotes kept); a later key wins.

    >>> f = fields(b' argc=2 a0="ls" a1=2D6C\\x1dUID="root"')
    >>> f[b"argc"], f[b"a0"], f[b"a1"], f[b"UID"]
    (b'2', b'"ls"', b'2D6C', b'"root"')
    >>> fields(b' key=(null)ARCH=x86_64 SYSCALL=execve')[b"ARCH"]
    b'x86_64'
    """
    out = dict(FIELD_RE.findall(body))
    key = out.get(b"key")
    if key is not None and _GLUED_ARCH in key:
        glued = key.rfind(_GLUED_ARCH)
        if glued > 0:
            out[b"key"] = key[:glued]
            out.setdefault(b"ARCH", key[glued + len(_GLUED_ARCH) :])
    return out


def is_hex(value: bytes) -> bool:
    """Valid upper-case hex, as the kernel writes it (go-libaudit decodes only this)."""
    return _HEX_RE.fullmatch(value) is not None


def decode(value: bytes | None, *, nul: str = " ") -> tuple[str | None, bool]:
    """Decode an untrusted-string value: ``(text, ok)``.

    Quoted values lose their quotes, hex values are decoded (a NUL byte becomes ``nul``; pass
    ``nul=""`` to cut the text at the first NUL, as EXECVE arguments are), values meaning
    "nothing" (``(null)``, ``?``, empty) give None. ``ok`` is False for an unquoted value that
    is not valid hex: it is returned as written and the caller reports it.

    >>> decode(b'"/usr/bin/ss"'), decode(b"2F7573722F62696E2F7373"), decode(b"(null)")
    (('/usr/bin/ss', True), ('/usr/bin/ss', True), (None, True))
    >>> decode(b"756E616D65002D61"), decode(b"2F7A7", nul="")
    (('uname -a', True), ('2F7A7', False))
    """
    if value is None or value in _EMPTY:
        return None, True
    if value[0] == 0x22:  # '"'
        inner = value[1:-1] if len(value) >= 2 and value[-1] == 0x22 else value[1:]
        if inner in _EMPTY:
            return None, True
        return inner.decode("utf-8", "replace"), True
    if is_hex(value):
        raw = bytes.fromhex(value.decode("ascii"))
        if b"\x00" in raw:
            raw = raw.split(b"\x00", 1)[0] if not nul else raw.replace(b"\x00", nul.encode())
        return raw.decode("utf-8", "replace"), True
    return value.decode("utf-8", "replace"), False


def decode_bytes(value: bytes) -> tuple[bytes, bool]:
    """The raw bytes of a quoted or hex value (for arguments split over several fields)."""
    if value[:1] == b'"':
        return (value[1:-1] if len(value) >= 2 and value[-1:] == b'"' else value[1:]), True
    if is_hex(value):
        return bytes.fromhex(value.decode("ascii")), True
    return value, False


def text(value: bytes | None) -> str | None:
    """A plain value (numbers, names) as text; None for the "no value" markers."""
    if value is None or value in _EMPTY:
        return None
    if value[:1] == b'"':
        value = value[1:-1] if len(value) >= 2 and value[-1:] == b'"' else value[1:]
        if value in _EMPTY:
            return None
    return value.decode("utf-8", "replace")


#: what every record line starts with; any other non-blank line is not an audit record
RECORD_STARTS = (b"type=", b"node=")
NOT_A_RECORD = "auditd: not an audit record"


def foreign_lines(buf: bytes | bytearray, begin: int, end: int) -> Iterator[tuple[int, bytes]]:
    """(index from 0, line) of each non-blank line in ``buf[begin:end]`` that does not start
    like a record (the full parser reports these as :data:`NOT_A_RECORD`)."""
    for i, line in enumerate(bytes(buf[begin:end]).split(b"\n")):
        if line.strip() and not line.startswith(RECORD_STARTS):
            yield i, line
