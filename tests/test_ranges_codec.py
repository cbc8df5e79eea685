"""The events worker processes send back come out as they went in (``sources.ranges``)."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from rarebird.events import ProcessEvent, SourceLocation
from rarebird.sources.ranges import decode_event, encode_event

TEXT = st.text(max_size=20)  # quotes, backslashes, newlines, NULs, non-ASCII
MAYBE = st.none() | TEXT
WORDS = st.lists(TEXT, max_size=3).map(tuple)


@st.composite
def events(draw: st.DrawFn) -> ProcessEvent:
    # hypothesis takes naive bounds and adds the zone itself
    low, high = datetime(1970, 1, 1), datetime(9999, 1, 1)  # noqa: DTZ001
    stamp = draw(st.datetimes(min_value=low, max_value=high, timezones=st.just(UTC)))
    return ProcessEvent(
        timestamp=stamp,
        event_type=draw(WORDS),
        user_name=draw(MAYBE),
        user_id=draw(MAYBE),
        process_name=draw(MAYBE),
        process_args=draw(WORDS),
        process_pid=draw(st.none() | st.integers(-(2**63), 2**63 - 1)),
        host_name=draw(MAYBE),
        tags=draw(WORDS),
        extra=draw(st.dictionaries(TEXT, WORDS, max_size=3)),
        origin=draw(st.none() | st.builds(SourceLocation, TEXT, st.integers(1, 10**9))),
    )


@settings(max_examples=300, deadline=None)
@given(events(), st.integers(0, 10**6))
def test_an_event_comes_back_as_it_went_with_its_line_counted_from_the_file_start(
    event: ProcessEvent, lines_before: int
) -> None:
    back = decode_event(encode_event(event), lines_before)
    if event.origin is not None:
        assert back.origin == SourceLocation(event.origin.path, event.origin.line + lines_before)
    assert back == ProcessEvent(**{**_fields(event), "origin": back.origin})
    assert back.timestamp.tzinfo is UTC
    assert encode_event(event) == encode_event(decode_event(encode_event(event)))


def _fields(event: ProcessEvent) -> dict[str, object]:
    return {name: getattr(event, name) for name in ProcessEvent.__dataclass_fields__}
