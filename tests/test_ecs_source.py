"""The ECS source: layouts, envelopes, keys, values, timestamps, bad lines, gzip, the prefilter."""

from __future__ import annotations

import gzip
import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rarebird.definitions.datafeed import load_datafeed
from rarebird.events import ProcessEvent, SourceLocation
from rarebird.sources import KEEP_ALL, FieldCondition, Prefilter, SourceOptions
from rarebird.sources.ecs import EcsSource, byte_conditions, detect_layout, sniff_ecs
from rarebird.sources.multipattern import load_hyperscan
from tests.conftest import shared_path

DATAFEED = load_datafeed()
FEED = SourceOptions(prefilter=DATAFEED.query.prefilter)
T0 = "2026-01-05T10:00:00.000Z"


def doc(
    name: str = "ss", user: str = "alice", ts: Any = T0, etype: Any = "start"
) -> dict[str, Any]:
    return {
        "@timestamp": ts,
        "event": {"type": [etype] if isinstance(etype, str) else etype, "category": ["process"]},
        "host": {"name": "web-01", "os": {"type": "linux"}},
        "process": {"name": name, "args": [name, "-t"], "pid": 42},
        "user": {"name": user},
    }


def write_lines(path: Path, lines: list[str | bytes | dict[str, Any]], end: bytes = b"\n") -> Path:
    out = bytearray()
    for line in lines:
        if isinstance(line, dict):
            out += orjson.dumps(line)
        elif isinstance(line, str):
            out += line.encode()
        else:
            out += line
        out += end
    path.write_bytes(bytes(out))
    return path


#: the byte searches of the prefilter (one Hyperscan pass where the wheel runs, else libc)
SEARCHES = ("libc", "python") + (("hyperscan",) if load_hyperscan() is not None else ())


def read(
    path: Path, options: SourceOptions = FEED, **kw: Any
) -> tuple[list[ProcessEvent], EcsSource]:
    src = EcsSource(str(path), options, **kw)
    return list(src), src


def issues(src: EcsSource) -> list[str]:
    return [f"{i.location.line}: {i.reason}" for i in src.stats.issues]


# --- documents -----------------------------------------------------------------------------------


def test_nested_dotted_and_mixed_keys_give_the_same_event(tmp_path: Path) -> None:
    nested = doc()
    dotted = {
        "@timestamp": T0,
        "event.type": ["start"],
        "event.category": ["process"],
        "host.name": "web-01",
        "host.os.type": "linux",
        "process.name": "ss",
        "process.args": ["ss", "-t"],
        "process.pid": 42,
        "user.name": "alice",
    }
    mixed = {
        "@timestamp": T0,
        "event": {"type": ["start"], "category": ["process"]},
        "host": {"name": "web-01", "os.type": "linux"},
        "process.name": "ss",
        "process": {"args": ["ss", "-t"], "pid": 42},
        "user": {"name": "alice"},
    }
    events, src = read(write_lines(tmp_path / "e.ndjson", [nested, dotted, mixed]))
    assert len(events) == 3
    first = events[0]
    assert first.user_name == "alice"
    assert first.process_name == "ss"
    assert first.process_args == ("ss", "-t")
    assert first.process_pid == 42
    assert first.event_type == ("start",)
    assert first.host_os_type == "linux"
    assert first.timestamp == datetime(2026, 1, 5, 10, tzinfo=UTC)
    assert first.origin == SourceLocation(str(tmp_path / "e.ndjson"), 1)
    strip = [ev.with_origin(SourceLocation("x", 0)) for ev in events]
    assert strip[0] == strip[1] == strip[2]
    assert src.stats.events == 3


def test_other_fields_go_to_extra_as_keyword_strings(tmp_path: Path) -> None:
    d = doc()
    d["process"]["interactive"] = False
    d["process"]["args_count"] = 2
    d["process"]["Ext"] = {"ancestry": ["a1", "a2"]}
    d["host"]["ip"] = ["10.0.0.1", "fe80::1"]
    d["host"]["uptime"] = 12.5
    d["dll"] = [{"name": "x.so", "size": 1}, {"name": "y.so"}]
    d["labels"] = {"empty": [], "none": None}
    events, _ = read(write_lines(tmp_path / "e.ndjson", [d]), KEEP_OPTIONS)
    ev = events[0]
    assert ev.get("process.interactive") == ("false",)
    assert ev.get("process.args_count") == ("2",)
    assert ev.get("process.Ext.ancestry") == ("a1", "a2")
    assert ev.get("host.ip") == ("10.0.0.1", "fe80::1")
    assert ev.get("host.uptime") == ("12.5",)
    assert ev.get("dll.name") == ("x.so", "y.so")
    assert ev.get("dll.size") == ("1",)
    assert ev.get("labels.empty") == ()
    assert ev.get("labels.none") == ()
    assert ev.get("event.category") == ("process",)
    assert "@timestamp" not in ev.extra


KEEP_OPTIONS = SourceOptions(prefilter=KEEP_ALL)


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2026-01-05T10:00:00Z", datetime(2026, 1, 5, 10, tzinfo=UTC)),
        ("2026-01-05T10:00:00.250Z", datetime(2026, 1, 5, 10, 0, 0, 250000, tzinfo=UTC)),
        ("2026-01-05T12:00:00+02:00", datetime(2026, 1, 5, 10, tzinfo=UTC)),
        ("2026-01-05T10:00:00", datetime(2026, 1, 5, 10, tzinfo=UTC)),
        (1767607200000, datetime(2026, 1, 5, 10, tzinfo=UTC)),
        ("1767607200000", datetime(2026, 1, 5, 10, tzinfo=UTC)),
    ],
)
def test_timestamps_iso_or_epoch_millis_in_utc(
    tmp_path: Path, stamp: Any, expected: datetime
) -> None:
    events, _ = read(write_lines(tmp_path / "e.ndjson", [doc(ts=stamp)]))
    assert [ev.timestamp for ev in events] == [expected]


def test_documents_without_a_valid_timestamp_are_skipped_and_counted(tmp_path: Path) -> None:
    no_ts = doc()
    del no_ts["@timestamp"]
    path = write_lines(
        tmp_path / "e.ndjson",
        [doc(), no_ts, doc(ts="yesterday"), doc(ts=True), doc(ts=[T0, T0]), doc(user="bob")],
    )
    for options in (FEED, KEEP_OPTIONS):
        events, src = read(path, options)
        assert [ev.user_name for ev in events] == ["alice", "bob"]
        assert issues(src) == [
            "2: missing @timestamp",
            "3: bad @timestamp",
            "4: bad @timestamp",
            "5: bad @timestamp",
        ]
        assert src.stats.skipped_total == 4
        assert src.stats.events == 2


def test_envelopes_hits_search_response_es_archive_and_arrays(tmp_path: Path) -> None:
    hit = {"_index": "logs-endpoint", "_id": "1", "_source": doc(user="hit")}
    response = {
        "took": 3,
        "hits": {
            "total": {"value": 2},
            "hits": [{"_source": doc(user="r1")}, {"_source": doc(user="r2")}],
        },
    }
    archive = {"type": "doc", "value": {"index": "i", "id": "2", "source": doc(user="arch")}}
    index_def = {"type": "index", "value": {"index": "i", "mappings": {}}}
    array = [doc(user="a1"), {"_source": doc(user="a2")}]
    path = write_lines(
        tmp_path / "e.ndjson", [hit, response, archive, index_def, orjson.dumps(array)]
    )
    events, src = read(path)
    assert [(ev.user_name, ev.origin.line if ev.origin else 0) for ev in events] == [
        ("hit", 1),
        ("r1", 2),
        ("r2", 2),
        ("arch", 3),
        ("a1", 5),
        ("a2", 5),
    ]
    assert "_id" not in events[0].extra
    assert "_index" not in events[0].extra
    assert src.stats.skipped_total == 0


def test_pretty_printed_document_stream(tmp_path: Path) -> None:
    records = [
        {"type": "doc", "value": {"index": "i", "id": str(i), "source": doc(user=f"u{i}")}}
        for i in range(3)
    ]
    text = "\n\n".join(json.dumps(r, indent=2) for r in records) + "\n"
    lines = text.split("\n")
    bad_at = len(json.dumps(records[0], indent=2).split("\n")) + 2  # first line of record 2
    broken = text.replace('"id": "1"', '"id": "1",,', 1)
    path = tmp_path / "data.json"
    path.write_text(text)
    events, src = read(path)
    assert src.layout == "stream"
    assert [ev.user_name for ev in events] == ["u0", "u1", "u2"]
    assert events[1].origin == SourceLocation(str(path), bad_at)
    assert src.stats.lines == len(lines) - 1
    path.write_text(broken)
    events, src = read(path)
    assert [ev.user_name for ev in events] == ["u0", "u2"]
    assert issues(src) == [f"{bad_at}: invalid JSON"]


def test_kibana_es_archive(tmp_path: Path) -> None:
    path = shared_path(
        "corpora/elastic-kibana/x-pack/test/functional/es_archives/auditbeat/uncommon_processes/data.json"
    )
    events, src = read(path, KEEP_OPTIONS)
    assert src.layout == "stream"
    assert len(events) == 3
    first = events[0]
    assert first.timestamp == datetime(2019, 2, 19, 20, 27, 31, 74000, tzinfo=UTC)
    assert first.user_name == "root"
    assert first.process_name == "kworker/u2:0"
    assert first.process_pid == 5893
    assert first.process_args == ()
    assert first.event_type == ()  # ECS 1.0 beta: no event.type
    assert first.event_action == "process_started"
    assert first.host_os_family == "debian"
    assert first.get("process.ppid") == ("2",)
    assert first.get("host.containerized") == ("false",)
    # the datafeed needs event.type: start, which these 2019 documents lack
    assert [ev for ev in events if DATAFEED.query.matches(ev)] == []
    events, src = read(path, FEED)
    assert events == []
    assert src.stats.prefiltered == 3


# --- bad lines ------------------------------------------------------------------------------------


BAD_LINES: list[str | bytes | dict[str, Any]] = [
    doc(user="u1"),
    "not json at all",
    '{"@timestamp": "2026-01-05T10:00:00Z", "process": {"name": "ss"',  # cut short, a candidate
    '{"@timestamp": "2026-01-05T10:00:00Z", "process": {"name": "bash"',  # cut short, not one
    '"a string"',
    "42",
    doc(user="u2"),
    '{"@timestamp": "2026-01-05T10:00:00Z", "user": {"name": "bob"} "x": 1}',  # no comma
    "",
    "   ",
    doc(user="u3"),
]


def test_bad_lines_are_counted_with_their_line_and_cost_no_neighbour(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "bad.ndjson", BAD_LINES)
    events, src = read(path, KEEP_OPTIONS)
    assert [ev.user_name for ev in events] == ["u1", "u2", "u3"]
    assert issues(src) == [
        "2: invalid JSON",
        "3: invalid JSON",
        "4: invalid JSON",
        "5: not a JSON object",
        "6: not a JSON object",
        "8: invalid JSON",
    ]
    assert src.stats.lines == 11
    assert str(src.stats.issues[0].location) == f"{path}:2"


def test_fast_mode_reports_badly_framed_lines_it_does_not_parse(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "bad.ndjson", BAD_LINES)
    for search in SEARCHES:
        events, src = read(path, FEED, search=search)
        assert [ev.user_name for ev in events] == ["u1", "u2", "u3"]
        # line 8 is framed like an object and holds no value of the datafeed: not parsed
        assert issues(src) == [
            "2: invalid JSON",
            "3: invalid JSON",
            "4: invalid JSON",
            "5: invalid JSON",
            "6: invalid JSON",
        ]
        assert src.stats.lines == 11
        assert src.stats.events == 3
        # u1, u2, u3 and line 3 are parsed; line 8 is skipped unparsed
        assert src.stats.prefiltered == 1


def test_nul_bytes_long_lines_crlf_bom_and_no_final_newline(tmp_path: Path) -> None:
    long_doc = doc(user="long")
    long_doc["message"] = "x" * 5000
    lines: list[str | bytes | dict[str, Any]] = [
        doc(user="u1"),
        b'{"process": {"name": "ss"}, "x": "\x00"}',
        long_doc,
        doc(user="u2"),
    ]
    body = b"\xef\xbb\xbf" + b"\r\n".join(
        orjson.dumps(x) if isinstance(x, dict) else x  # type: ignore[misc]
        for x in lines
    )
    path = tmp_path / "e.ndjson"
    path.write_bytes(body)  # CRLF, a BOM, no newline at the end
    small = SourceOptions(prefilter=FEED.prefilter, max_line_bytes=1000)
    for options in (small, SourceOptions(prefilter=KEEP_ALL, max_line_bytes=1000)):
        for chunk in (64, 300, 1 << 20):
            events, src = read(path, options, chunk_bytes=chunk)
            assert [ev.user_name for ev in events] == ["u1", "u2"], (options, chunk)
            assert issues(src) == ["2: invalid JSON", "3: line too long"], (options, chunk)
            assert src.stats.lines == 4


# --- gzip and chunking -----------------------------------------------------------------------------


def test_gzip_by_magic_bytes_multi_member_and_cut_short(tmp_path: Path) -> None:
    data = b"".join(orjson.dumps(doc(user=f"u{i}")) + b"\n" for i in range(50))
    plain = tmp_path / "plain.ndjson"
    plain.write_bytes(data)
    no_suffix = tmp_path / "compressed.log"
    no_suffix.write_bytes(gzip.compress(data[:3000]) + gzip.compress(data[3000:]))
    expected, _ = read(plain)
    events, src = read(no_suffix)
    assert [e.user_name for e in events] == [e.user_name for e in expected]
    assert len(events) == 50
    assert src.stats.bytes == len(data)
    cut = tmp_path / "cut.ndjson.gz"
    cut.write_bytes(gzip.compress(data)[:-30])
    events, src = read(cut)
    assert 40 <= len(events) < 50
    assert [i.reason for i in src.stats.issues] == ["read error", "invalid JSON"]  # the cut line


def test_results_do_not_depend_on_chunk_size_or_search(tmp_path: Path) -> None:
    rng = random.Random(3)
    names = ["ss", "sshd", "netstat", "ip", "route", "bash", "showmount"]
    lines: list[str | bytes | dict[str, Any]] = []
    for i in range(400):
        d = doc(name=rng.choice(names), user=f"u{i % 7}", etype=rng.choice(["start", "end"]))
        d["message"] = "y" * rng.randrange(0, 700)
        lines.append(d)
        if i % 50 == 7:
            lines.append("garbage")
    path = write_lines(tmp_path / "e.ndjson", lines)
    reference, ref_src = read(path)
    assert len(reference) > 50
    for chunk in (16, 100, 1000, 5000):
        for search in SEARCHES:
            events, src = read(path, chunk_bytes=chunk, search=search)
            assert events == reference
            assert issues(src) == issues(ref_src)
            assert (src.stats.lines, src.stats.prefiltered) == (
                ref_src.stats.lines,
                ref_src.stats.prefiltered,
            )


# --- the prefilter --------------------------------------------------------------------------------


def test_prefilter_counts_and_decoys(tmp_path: Path) -> None:
    lines: list[str | bytes | dict[str, Any]] = [
        doc(name="ss"),
        doc(name="sshd"),  # "process" and "sshd" hold ss, not "ss"
        doc(name="ip") | {"process": {"name": "ip", "args": ["ip", "route"]}},  # decoy
        doc(name="netstat", etype="end"),
        doc(name="s\u0073"),
        '{"@timestamp": "2026-01-05T10:00:00Z", "event.type": "start", "process.name": "\\u0073s"}',
        '{"@timestamp": "2026-01-05T10:00:00Z", "event.type": "start", "process.name": "ro\\u0075te"}',
        '{"@timestamp": "2026-01-05T10:00:00Z", "event.type": "start", "process.name": "bash"}',
    ]
    events, src = read(write_lines(tmp_path / "e.ndjson", lines))
    assert [(ev.process_name, ev.origin.line if ev.origin else 0) for ev in events] == [
        ("ss", 1),
        ("ss", 5),
        ("ss", 6),
        ("route", 7),
    ]
    assert src.stats.lines == 8
    # lines 2 and 8 never parsed; line 3 (ip route) and line 4 (an end event) parsed, dropped
    assert src.stats.prefiltered == 4
    assert src.stats.events == 4


def test_conditions_that_cannot_be_searched_as_strings() -> None:
    pre = Prefilter(
        (
            FieldCondition("process.pid", frozenset({"42"})),
            FieldCondition("process.interactive", frozenset({"true"})),
            FieldCondition("process.name", frozenset({"a/b", 'q"t'})),
        )
    )
    conds = byte_conditions(pre)
    assert [c.field for c in conds] == ["process.name"]
    assert conds[0].needles == (b'"a/b"', b'"q\\"t"')
    assert conds[0].short_escapes == (b'\\"', b"\\/")
    assert conds[0].may_match(b'{"process.name": "a\\/b"}')
    assert conds[0].may_match(b'{"process.name": "q\\u0022t"}')
    assert not conds[0].may_match(b'{"process.name": "a b"}')


def test_a_numeric_condition_still_keeps_everything(tmp_path: Path) -> None:
    options = SourceOptions(
        prefilter=Prefilter((FieldCondition("process.pid", frozenset({"42"})),))
    )
    path = write_lines(tmp_path / "e.ndjson", [doc(), doc(user="bob")])
    events, src = read(path, options)
    assert [ev.user_name for ev in events] == ["alice", "bob"]
    assert src.stats.prefiltered == 0


def test_sniff_and_layout() -> None:
    assert sniff_ecs(orjson.dumps(doc()) + b"\n") == 1.0
    assert sniff_ecs(b'{"a": 1}\n') == 0.5
    assert sniff_ecs(b"type=SYSCALL msg=audit(1.0:1): arch=c000003e\n") == 0.0
    assert sniff_ecs(b'{\n  "type": "doc",\n  "value": {\n') == 0.9
    assert detect_layout(b'{"a": 1}\n{"b": 2}\n') == "ndjson"
    assert detect_layout(b"garbage\n{}\n") == "ndjson"
    # an Apache licence (indented prose) is not a pretty-printed document stream: the user is
    # asked for the format instead of getting "169 lines of invalid JSON"
    licence = b"\n                                 Apache License\n           Version 2.0\n"
    assert sniff_ecs(licence) == 0.0
    assert sniff_ecs(b'\xef\xbb\xbf  {\n  "@timestamp": "x"\n}\n') == 0.9


# --- prefilter equivalence, property-based --------------------------------------------------------

NAMES = [
    "ss",
    "netstat",
    "route",
    "showmount",
    "sshd",
    "ssh",
    "sss_cache",
    "s",
    "SS",
    "ss ",
    "ip",
    "/ss",
]
TYPES: list[Any] = ["start", "end", "info", ["start", "end"], ["end"], "START", "start\n"]


def _escape(text: str, rng: random.Random) -> str:
    out = ['"']
    for ch in text:
        roll = rng.random()
        if ch in '"\\' or ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}" if roll < 0.5 else json.dumps(ch)[1:-1])
        elif roll < 0.15:
            out.append(f"\\u{ord(ch):04X}" if rng.random() < 0.5 else f"\\u{ord(ch):04x}")
        elif ch == "/" and roll < 0.5:
            out.append("\\/")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _ws(rng: random.Random) -> str:
    return rng.choice(["", "", " ", "  ", "\t"])


def _encode(value: Any, rng: random.Random) -> str:
    if isinstance(value, dict):
        items = [
            f"{_ws(rng)}{_escape(k, rng)}{_ws(rng)}:{_ws(rng)}{_encode(v, rng)}"
            for k, v in value.items()
        ]
        return "{" + ",".join(items) + _ws(rng) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_ws(rng) + _encode(v, rng) for v in value) + "]"
    if isinstance(value, str):
        return _escape(value, rng)
    return json.dumps(value)


def _place(target: dict[str, Any], dotted: str, value: Any, rng: random.Random) -> None:
    parts = dotted.split(".")
    split = rng.randrange(1, len(parts) + 1)  # how many parts are nested objects
    node = target
    for part in parts[: split - 1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            return
        node = child
    node[".".join(parts[split - 1 :])] = value


@st.composite
def documents(draw: st.DrawFn) -> tuple[str, bool]:
    seed = draw(st.integers(0, 2**32 - 1))
    rng = random.Random(seed)
    d: dict[str, Any] = {}
    fields: dict[str, Any] = {
        "@timestamp": f"2026-01-05T{draw(st.integers(0, 23)):02d}:00:00Z",
        "process.name": draw(st.sampled_from(NAMES)),
        "event.type": draw(st.sampled_from(TYPES)),
        "host.os.type": draw(st.sampled_from(["linux", "windows"])),
        "user.name": draw(st.sampled_from(["alice", "ss", "route", "bob"])),
        "process.args": [draw(st.sampled_from(NAMES)), "-t"],
    }
    if draw(st.booleans()):
        fields["process.name"] = [fields["process.name"]] + draw(
            st.lists(st.sampled_from(NAMES), max_size=2)
        )
    if draw(st.booleans()):
        del fields["process.name"]
    order = list(fields)
    rng.shuffle(order)
    for name in order:
        _place(d, name, fields[name], rng)
    envelope = draw(st.sampled_from(["plain", "hit", "search", "archive"]))
    if envelope == "hit":
        wrapped: Any = {"_index": "x", "_source": d}
    elif envelope == "search":
        wrapped = {
            "hits": {
                "hits": [{"_source": d}, {"_source": {"@timestamp": T0, "user": {"name": "ss"}}}]
            }
        }
    elif envelope == "archive":
        wrapped = {"type": "doc", "value": {"index": "x", "source": d}}
    else:
        wrapped = d
    return _encode(wrapped, rng), draw(st.booleans())


def _kept(path: Path, options: SourceOptions, **kw: Any) -> list[ProcessEvent]:
    events, _ = read(path, options, **kw)
    return [ev for ev in events if DATAFEED.query.matches(ev)]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(documents(), min_size=1, max_size=12))
def test_prefilter_never_drops_what_the_datafeed_keeps(
    tmp_path: Path, docs: list[tuple[str, bool]]
) -> None:
    body = "".join(text + ("\r\n" if crlf else "\n") for text, crlf in docs).encode()
    path = tmp_path / "prop.ndjson"
    path.write_bytes(body)
    full = _kept(path, KEEP_OPTIONS)
    assert _kept(path, FEED) == full
    assert _kept(path, FEED, search="python", chunk_bytes=64) == full
    if "hyperscan" in SEARCHES:
        assert _kept(path, FEED, search="hyperscan", chunk_bytes=64) == full


def test_the_jobs_fast_field_getters_agree_with_event_value() -> None:
    from rarebird.events import FIELD_ATTRS, value_getter

    ev = ProcessEvent(
        timestamp=datetime(2026, 1, 5, 3, 0, tzinfo=UTC),
        user_name="alice",
        process_args=("ss", "-tunap"),
        event_type=("start",),
        process_pid=42,
        process_parent_args=(),
        host_name="",
        extra={"labels.team": ("blue", "red"), "labels.none": ()},
    )
    names = [*FIELD_ATTRS, "@timestamp", "labels.team", "labels.none", "no.such"]
    got = {name: value_getter(name)(ev) for name in names}
    assert got == {name: ev.value(name) for name in names}
    assert got["process.args"] == "ss,-tunap"
    assert got["process.pid"] == "42"
    assert got["labels.team"] == "blue,red"
    assert got["host.name"] == ""
    assert got["process.parent.args"] is None
    assert got["labels.none"] is None
