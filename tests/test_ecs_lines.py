"""The lines of an NDJSON chunk Python must look at, found with numpy, against the plain
per-line definition (the loop the reader used before), on arbitrary bytes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rarebird.sources.ecs.lines import lines_to_visit


def reference(
    buf: bytes, n: int, hits: list[int]
) -> tuple[int, list[tuple[int, int, int, bool, bool]]]:
    out, start, index = [], 0, 0
    while (end := buf.find(b"\n", start, n)) >= 0:
        hit = any(start <= h < end for h in hits)
        framed = end > start and buf[start] == 0x7B and buf[end - 1] == 0x7D
        if hit or not framed:
            out.append((index, start, end, hit, framed))
        start, index = end + 1, index + 1
    return index, out


@given(
    st.lists(st.sampled_from([b"{", b"}", b"\n", b"x", b'"ss"', b"{}", b"\x00"]), max_size=60),
    st.data(),
)
@settings(max_examples=500, deadline=None)
def test_the_numpy_lines_are_the_per_line_loops(parts: list[bytes], data: st.DataObject) -> None:
    buf = b"".join(parts)
    n = data.draw(st.integers(0, len(buf)))
    hits = data.draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=8)) if n else []
    hits = [h for h in hits if buf[h : h + 1] != b"\n"]  # a literal never starts at a line end
    assert lines_to_visit(bytearray(buf), n, hits) == reference(buf, n, hits)
