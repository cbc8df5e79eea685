"""The msgspec quick lane gives exactly what the orjson path gives, or declines the line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rarebird.definitions.datafeed import load_datafeed
from rarebird.definitions.job import load_job
from rarebird.events import ProcessEvent, SourceLocation
from rarebird.sources import SourceOptions
from rarebird.sources.ecs import (
    PREFILTERED,
    DocumentError,
    EcsSource,
    documents_in,
    event_from_document,
)

DATAFEED = load_datafeed()
JOB = load_job()
FIELDS = frozenset(
    set(DATAFEED.query.fields)
    | set(JOB.influencers)
    | {"@timestamp", JOB.detector.by_field_name, "labels.team", "process.hash.sha256"}
)
OPTIONS = SourceOptions(prefilter=DATAFEED.query.prefilter, fields=FIELDS)
HERE = SourceLocation("t.ndjson", 7)
T0 = "2026-01-05T10:00:00.000Z"


def general(line: bytes, src: EcsSource) -> ProcessEvent | str | None:
    """What the orjson path makes of a one-document line: the event, PREFILTERED (as the
    string "prefiltered"), an error reason, or None for anything else."""
    try:
        docs = documents_in(orjson.loads(line))
    except (orjson.JSONDecodeError, DocumentError):
        return None
    if len(docs) != 1:
        return None
    if not all(c.holds(docs[0]) for c in src.conditions):
        return "prefiltered"
    try:
        return event_from_document(docs[0], HERE, src.wanted)
    except DocumentError as exc:
        return f"error: {exc.reason} {exc.detail}"


def quick(line: bytes, src: EcsSource) -> ProcessEvent | str | None:
    assert src.lane is not None
    try:
        event = src.lane.event(line, HERE)
    except DocumentError as exc:
        return f"error: {exc.reason} {exc.detail}"
    if event is PREFILTERED:
        return "prefiltered"
    return event


# --- random documents -------------------------------------------------------------------------

SCALARS = st.one_of(
    st.sampled_from(["ss", "netstat", "route", "showmount", "start", "linux", "alice", "", "0"]),
    st.integers(-(2**65), 2**65),
    st.sampled_from([0, 1, 42, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["name", "x"]), inner)
    ),
    max_leaves=6,
)
STAMPS = st.one_of(
    st.sampled_from(["2026-01-05T10:00:00Z", "2026-01-05T10:00:00.123+02:00", "nope", ""]),
    st.integers(-(10**13), 10**13),
    st.floats(allow_nan=False, allow_infinity=False),
    st.none(),
    st.lists(st.just("2026-01-05T10:00:00Z"), max_size=2),
)
PATHS = [
    "process.name",
    "process.args",
    "process.pid",
    "process.parent.name",
    "process.parent.pid",
    "event.type",
    "event.category",
    "host.os.type",
    "host.name",
    "user.name",
    "user.id",
    "labels.team",
    "process.hash.sha256",
    "agent.version",
]


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    doc: dict[str, Any] = {}
    if draw(st.integers(0, 9)):
        doc["@timestamp"] = draw(STAMPS) if draw(st.integers(0, 5)) == 0 else T0
    likely = {
        "process.name": st.sampled_from(["ss", "netstat", "bash", ["bash", "ss"], ["ss"]]),
        "event.type": st.sampled_from(["start", ["start", "end"], "end", ["info"]]),
        "host.os.type": st.sampled_from(["linux", "windows", ["linux"]]),
        "user.name": st.sampled_from(["alice", "root", ["alice", "bob"]]),
    }
    plain = st.one_of(
        st.sampled_from(["ss", "x", "", "12", "-3", "1.5"]),
        st.lists(st.sampled_from(["a", "ss", ""]), max_size=3),
        st.integers(-(2**63), 2**64 - 1),
        st.booleans(),
        st.none(),
    )
    dotted = draw(st.sampled_from(PATHS)) if draw(st.integers(0, 7)) == 0 else None
    for path in PATHS:
        if not draw(st.integers(0, 3)):
            continue
        odd = draw(st.integers(0, 19)) == 0
        if odd:
            value = draw(VALUES)
        elif path in likely and draw(st.integers(0, 3)):
            value = draw(likely[path])
        else:
            value = draw(plain)
        if path == dotted:
            # one of the dotted spellings: {"a.b.c": v}, {"a.b": {"c": v}} or {"a": {"b.c": v}}
            parts = path.split(".")
            cut = draw(st.integers(0, len(parts) - 1))
            if cut == 0 or len(parts) == 2:
                doc[path] = value
            elif draw(st.booleans()):
                doc.setdefault(".".join(parts[:cut]), {})[".".join(parts[cut:])] = value
            else:
                doc.setdefault(parts[0], {})[".".join(parts[1:])] = value
            continue
        node = doc
        parts = path.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            node[parts[-1]] = value
    roll = draw(st.integers(0, 19))
    if roll == 0:
        doc["process"] = draw(VALUES)  # a scalar or array where an object is expected
    elif roll == 1:
        doc = {"_index": "x", "_source": doc}
    elif roll == 2:
        doc["host"] = [doc.get("host", {})]
    text = json.dumps(doc, ensure_ascii=draw(st.booleans()))
    if draw(st.integers(0, 9)) == 0:
        text = text.replace('"process"', '"process"  ', 1)
    return text.encode()


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(lines(), min_size=1, max_size=5))
def test_the_lane_agrees_with_the_general_path_or_declines(batch: list[bytes]) -> None:
    src = EcsSource("t.ndjson", OPTIONS)
    for line in batch:
        got = quick(line, src)
        if got is not None:
            assert got == general(line, src), line


def test_the_lane_takes_plain_documents_and_declines_what_it_cannot_be_sure_of() -> None:
    src = EcsSource("t.ndjson", OPTIONS)
    base: dict[str, Any] = {
        "@timestamp": "2026-01-05T10:00:00Z",
        "event": {"type": ["start"], "category": ["process"]},
        "host": {"name": "web-1", "os": {"type": "linux"}},
        "process": {"name": "ss", "args": ["ss", "-tunap"], "pid": 4242, "parent": {"pid": "7"}},
        "user": {"name": "alice", "id": 1000},
        "labels": {"team": True},
        "agent": {"version": "8.15.0", "huge": 1e308},
    }

    def line(**changes: Any) -> bytes:
        doc = json.loads(json.dumps(base))
        for path, value in changes.items():
            node = doc
            parts = path.split("__")
            for part in parts[:-1]:
                node = node[part]
            node[parts[-1]] = value
        return json.dumps(doc).encode()

    event = quick(line(), src)
    assert isinstance(event, ProcessEvent)
    assert event == general(line(), src)
    assert (event.process_name, event.process_args, event.process_pid) == (
        "ss",
        ("ss", "-tunap"),
        4242,
    )
    assert (event.process_parent_pid, event.user_id, event.extra) == (
        7,
        "1000",
        {"labels.team": ("true",)},
    )
    assert quick(line(process__name="bash"), src) == "prefiltered"
    assert quick(line(process__name=["bash", "ss"]), src) == general(
        line(process__name=["bash", "ss"]), src
    )
    assert quick(line(**{"@timestamp": "soon"}), src) == "error: bad @timestamp 'soon'"
    declined = [
        b'{"process.name": "ss", ' + line()[1:],  # a dotted key
        line(user__name="al\\ice"),  # a backslash
        line(user__name="al\u00efce"),  # not ASCII
        json.dumps({"_source": json.loads(line())}).encode(),  # an envelope
        line(process__pid=2**64),  # orjson makes it a float
        line(process__args=["ss", 1]),  # not all strings
        line(process__parent={"pid": {"deep": 1}}),  # an object at a wanted leaf
        line(host=[{"name": "web-1"}]),  # an array where an object is expected
        line(**{"@timestamp": ["2026-01-05T10:00:00Z"]}),
        line()[:-1],  # cut short
    ]
    for text in declined:
        assert quick(text, src) is None, text
    # The gate reads the condition fields alone: a near miss is turned away even when the
    # rest of it would send the line to the general path, which counts it the same way.
    near_misses = [
        line(process__name="bash", host=[{"name": "web-1"}]),
        line(event__type=["end"], process__args=["ss", 1]),
        line(process__name="sshd", process__parent={"pid": {"deep": 1}}),
    ]
    for text in near_misses:
        assert quick(text, src) == "prefiltered" == general(text, src), text
    # ... but not when a dotted key, an escape or an envelope could change what it reads.
    for text in declined[:4]:
        assert quick(text.replace(b'"ss"', b'"sshd"'), src) is None, text


def test_a_file_read_with_and_without_the_lane_gives_the_same_events_and_counts(
    tmp_path: Path,
) -> None:
    rows = []
    for i in range(200):
        d: dict[str, Any] = {
            "@timestamp": f"2026-01-05T10:{i % 60:02d}:00Z",
            "event": {"type": "start" if i % 3 else "end"},
            "host": {"os": {"type": "linux"}, "name": f"h{i % 4}"},
            "process": {"name": ["ss", "netstat", "bash"][i % 3], "pid": i, "args": ["x", str(i)]},
            "user": {"name": f"u{i % 5}"},
        }
        if i % 17 == 0:
            d["process.name"] = d["process"].pop("name")  # dotted: the general path
        text = json.dumps(d)
        if i % 23 == 0:
            text = text[:-3]  # broken
        rows.append(text)
    path = tmp_path / "e.ndjson"
    path.write_text("\n".join(rows) + "\n")
    with_lane = EcsSource(str(path), OPTIONS)
    without = EcsSource(str(path), OPTIONS, lane=False)
    assert with_lane.lane is not None
    assert without.lane is None
    a, b = list(with_lane), list(without)
    assert a == b
    assert len(a) > 50
    assert [e.origin for e in a] == [e.origin for e in b]
    assert [str(i.location) for i in with_lane.stats.issues] == [
        str(i.location) for i in without.stats.issues
    ]
    assert (with_lane.stats.prefiltered, with_lane.stats.events) == (
        without.stats.prefiltered,
        without.stats.events,
    )


def test_no_lane_when_every_field_is_kept() -> None:
    keep_all = SourceOptions(prefilter=DATAFEED.query.prefilter, fields=None)
    assert EcsSource("t.ndjson", keep_all).lane is None
    assert EcsSource("t.ndjson", OPTIONS).lane is not None
