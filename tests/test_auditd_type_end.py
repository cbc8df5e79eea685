"""The fast path's shortcuts decide exactly what the regular expressions they replace decide.

:func:`rarebird.sources.auditd.fast._type_end` recognises the records of one event by comparing
bytes (``[node=NODE ]type=`` + TYPE + `` msg=`` + stamp) instead of running ``HEADER_RE`` on
every candidate line: on lines built to sit near the boundary (other nodes, empty or 64-byte
types, a space or newline where the header has none, a cut header) both must agree.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rarebird.sources.auditd.fast import _name, _type_end
from rarebird.sources.auditd.records import HEADER_RE, header_from_match, parse_header

EVENTS = [
    b"type=SYSCALL msg=audit(1700000000.123:42): arch=c000003e",
    b"node=web1 type=SYSCALL msg=audit(1700000000.123:42): arch=c000003e",
    b"node= type=SYSCALL msg=audit(1700000000.123:42): ",
    b"node=web1 type=SYSCALL msg=audit(1.5:4294967295):",
]

_node = st.sampled_from(
    [b"", b"node=web1 ", b"node= ", b"node=web ", b"node=web1  ", b"node=web1\n"]
)
_type = st.sampled_from([b"type=CWD", b"type=", b"type=" + b"T" * 64, b"type=" + b"T" * 65,
                         b"type=C\nD", b"type=C\rD", b"type=C D", b"typ=CWD", b"node=web1 type=CWD"])  # fmt: skip
_sep = st.sampled_from([b" msg=", b"msg=", b"  msg=", b" msg=\n"])
_stamp = st.sampled_from([b"audit(1700000000.123:42):", b"audit(1700000000.123:4", b"audit(1.5:4294967295):",
                          b"audit(1700000000.123:421):", b"audit(1700000000.123:42)", b"audit(1.5:99999999999):"])  # fmt: skip


@given(
    event=st.sampled_from(EVENTS),
    parts=st.tuples(_node, _type, _sep, _stamp, st.sampled_from([b"", b" x=1", b"\n", b"\r"])),
    cut=st.integers(0, 200),
)
@settings(max_examples=3000)
def test_type_end_agrees_with_the_header_regex(
    event: bytes, parts: tuple[bytes, ...], cut: int
) -> None:
    header = parse_header(event)
    assert header is not None
    prefix, tail = _name(header)
    line = bytearray(b"".join(parts) + b" rest")
    end = min(cut, len(line))
    m = HEADER_RE.match(line, 0, end)
    same = (
        m is not None
        and (other := header_from_match(m, 0)) is not None
        and other.node == header.node
        and other.stamp == header.stamp
    )
    type_end = _type_end(line, 0, end, prefix, tail)
    assert (type_end >= 0) == same
    if m is not None and same:
        assert bytes(line[len(prefix) : type_end]) == m.group(2)
        assert type_end + len(tail) == m.end()


def test_type_end_on_the_records_of_an_event() -> None:
    header = parse_header(EVENTS[1])
    assert header is not None
    prefix, tail = _name(header)
    for line, expected in [
        (b"node=web1 type=EXECVE msg=audit(1700000000.123:42): argc=1", b"EXECVE"),
        (b"node=web1 type=EOE msg=audit(1700000000.123:42): ", b"EOE"),
        (b"node=web2 type=EXECVE msg=audit(1700000000.123:42): argc=1", None),
        (b"type=EXECVE msg=audit(1700000000.123:42): argc=1", None),
        (b"node=web1 type=EXECVE msg=audit(1700000000.123:421): argc=1", None),
        (b"node=web1 type=EXECVE  msg=audit(1700000000.123:42): argc=1", None),
        (b"node=web1 x=1 msg=audit(1700000000.123:42):", None),
    ]:
        buf = bytearray(line)
        end = _type_end(buf, 0, len(buf), prefix, tail)
        assert (bytes(buf[len(prefix) : end]) if end >= 0 else None) == expected, line
