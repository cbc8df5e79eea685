"""The prefilter's byte search in one pass (Hyperscan) finds the same lines as libc's strstr.

Elastic Defend process documents (the ECS fields of ``process``, ``event`` and ``user``) with
the datafeed's values written every way JSON allows: plain, ``\\u`` escapes, inside other
strings (``"sshd"``, ``"grep route"``), as a parent's name, in ``end`` events, next to NUL
bytes, in keys, overlapping (``"ss"ss"``). Every search must keep the same events; ``auto``
picks one and gives the same events too; the environment variable forces one.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from rarebird.definitions.datafeed import load_datafeed
from rarebird.events import ProcessEvent
from rarebird.sources import SourceOptions
from rarebird.sources.ecs import EcsSource, multiscan
from rarebird.sources.ecs.multiscan import ENV, MultiLiteral, search_mode
from rarebird.sources.ecs.prefilter import byte_conditions
from rarebird.sources.multipattern import load_hyperscan

FEED = load_datafeed().query.prefilter
HS = load_hyperscan()
needs_hyperscan = pytest.mark.skipif(HS is None, reason="hyperscan wheel missing or CPU lacks it")


def document(rng: random.Random, i: int) -> bytes:
    name = rng.choice(["ss", "netstat", "route", "showmount", "sshd", "ssh", "sss_cache", "ip"])
    doc = {
        "@timestamp": f"2026-01-05T{i % 24:02d}:{i % 60:02d}:00.000Z",
        "event": {
            "kind": "event",
            "category": ["process"],
            "type": [rng.choice(["start", "start", "end"])],
            "action": "exec",
        },
        "host": {"name": f"web-{i % 5}", "os": {"type": "linux"}},
        "process": {
            "name": name,
            "executable": f"/usr/bin/{name}",
            "args": [name, rng.choice(["-tunap", "route", "show"])],
            "parent": {"name": rng.choice(["bash", "ss", "sshd"])},
        },
        "user": {"name": rng.choice(["alice", "root", "ss"])},
    }
    text = json.dumps(doc, ensure_ascii=rng.random() < 0.5)
    r = rng.random()
    if r < 0.1:  # the name as \\u escapes
        text = text.replace('"name": "ss"', '"name": "\\u0073\\u0073"')
    elif r < 0.15:
        text = text.replace('"name": "route"', '"name": "rou\\u0074e"')
    elif r < 0.2:  # an escaped backslash before u: not an escape
        text = text.replace('"kind": "event"', '"kind": "\\\\u0073s"')
    elif r < 0.23:  # overlapping literals, and the literal as a key
        text = text.replace('"kind": "event"', '"kind": "x\\"ss\\"ss\\"", "ss": 1')
    elif r < 0.25:  # a NUL byte (reported, never hidden)
        text = text.replace('"kind"', '"ki\x00nd"')
    return text.encode()


@pytest.fixture(scope="module")
def ndjson(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = random.Random(10)
    path = tmp_path_factory.mktemp("ecs") / "defend.ndjson"
    path.write_bytes(b"\n".join(document(rng, i) for i in range(3000)) + b"\n")
    return path


def read(path: Path, **kw: object) -> tuple[list[ProcessEvent], EcsSource]:
    options = SourceOptions(prefilter=FEED, fields=frozenset({"user.name", "process.name"}))
    src = EcsSource(str(path), options, **kw)  # type: ignore[arg-type]
    return list(src), src


def outcome(events: list[ProcessEvent], src: EcsSource) -> tuple[object, ...]:
    stats = src.stats
    issues = [(i.location.line, i.reason) for i in stats.issues]
    return events, issues, stats.lines, stats.prefiltered, stats.events


@needs_hyperscan
@pytest.mark.parametrize("chunk", [64, 4096, 1 << 20])
def test_one_pass_keeps_exactly_what_libc_keeps(ndjson: Path, chunk: int) -> None:
    libc = outcome(*read(ndjson, search="libc", chunk_bytes=chunk))
    hs_events, hs_src = read(ndjson, search="hyperscan", chunk_bytes=chunk)
    assert hs_src.searcher == "hyperscan"
    assert outcome(hs_events, hs_src) == libc
    assert outcome(*read(ndjson, search="python", chunk_bytes=chunk)) == libc
    assert len(libc[0]) > 300  # type: ignore[arg-type]


@needs_hyperscan
def test_hits_mark_the_lines_of_every_literal_and_escape() -> None:
    assert HS is not None
    [cond] = [c for c in byte_conditions(FEED) if c.field == "process.name"]
    multi = MultiLiteral(HS, (cond,))
    text = b'{"a":"ss"}\n{"a":"sshd"}\n{"a":"\\u0073s"}\n{"a":"\\\\u0041"}\n{"a":"x"ss"ss"}\n'
    buf = bytearray(text + b"\x00" + b'"ss" stale bytes after the input')
    [hits] = multi.search(buf, len(text))
    lines = sorted({text.count(b"\n", 0, p) + 1 for p in hits})
    # line 2 holds no literal; line 4 holds \\u0041 ('A', no character of a value)
    assert lines == [1, 3, 5]
    assert all(p < len(text) for p in hits)


@needs_hyperscan
def test_auto_picks_a_search_and_keeps_the_same_events(
    ndjson: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("rarebird.sources.ecs.reader.CALIBRATE_MIN", 0)
    events, src = read(ndjson)
    assert src.searcher in ("hyperscan", "libc")
    assert outcome(events, src) == outcome(*read(ndjson, search="libc"))


def test_the_environment_variable_forces_a_search(
    ndjson: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, "python")
    events, src = read(ndjson)
    assert src.searcher == "python"
    monkeypatch.setenv(ENV, "libc")
    assert outcome(*read(ndjson)) == outcome(events, src)
    monkeypatch.setenv(ENV, "fastest")
    with pytest.raises(ValueError, match=ENV):
        search_mode(None)
    assert search_mode("libc") == "libc"  # an explicit choice wins


def test_without_the_wheel_auto_is_todays_search(
    ndjson: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("rarebird.sources.ecs.reader.load_hyperscan", lambda: None)
    monkeypatch.setattr("rarebird.sources.ecs.reader.CALIBRATE_MIN", 0)
    events, src = read(ndjson)
    assert src.searcher == "libc"
    with pytest.raises(ValueError, match="hyperscan"):
        read(ndjson, search="hyperscan")
    assert multiscan.SEARCHES == ("auto", "hyperscan", "libc", "python")
