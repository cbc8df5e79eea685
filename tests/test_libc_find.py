"""``sources.libc.finder``: libc's ``memmem`` answers what ``bytearray.find`` answers."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rarebird.sources.libc import SHORT, finder

NEEDLE = b" msg=audit(1.2:3):"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from([NEEDLE, NEEDLE[:-1], b"x" * 700, b"\n", b"\x00", b"):"]), max_size=30
    ),
    st.integers(-10, 25000),
    st.integers(-10, 25000),
)
def test_memmem_finds_what_find_finds(pieces: list[bytes], start: int, end: int) -> None:
    buf = bytearray(b"".join(pieces))
    find = finder(buf)
    assert find(NEEDLE, start, end) == buf.find(NEEDLE, start, end)


def test_long_ranges_go_to_libc_and_agree_with_python() -> None:
    buf = bytearray(b"y" * (4 * SHORT) + NEEDLE + b"\x00" + NEEDLE)
    with_libc, without = finder(buf), finder(buf, use_libc=False)
    assert with_libc is not buf.find  # where glibc has memmem, as on the CI machine
    for start in (0, 1, 4 * SHORT, 4 * SHORT + 1):
        assert with_libc(NEEDLE, start, len(buf)) == without(NEEDLE, start, len(buf))
    assert with_libc(NEEDLE, 0, len(buf)) == 4 * SHORT
    assert with_libc(NEEDLE, 4 * SHORT + 1, len(buf)) == 4 * SHORT + len(NEEDLE) + 1  # past NUL
