"""The auditd prefilter never loses an event: the fast path keeps exactly what a full parse keeps.

The fast path parses only the events whose ``exe=`` can name a discovery command; the full
parse reads every record. Both apply the datafeed's prefilter to the parsed events, so on any
input (generated fleets, hand-made tricky records, randomly mutated logs) they must produce the
same events, with the same origins, in the same order; so must several worker processes.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rarebird.definitions.datafeed import load_datafeed
from rarebird.events import ProcessEvent
from rarebird.generate.auditd import AuditLogOptions, audit_lines, tricky_audit_lines
from rarebird.generate.options import GeneratorOptions
from rarebird.generate.scenarios import generate_events
from rarebird.sources import FieldCondition, Prefilter, SourceOptions
from rarebird.sources.auditd import AuditdSource
from rarebird.sources.auditd import parallel as auditd_parallel
from rarebird.sources.auditd import source as auditd_module
from rarebird.sources.auditd.exe_search import exe_needle
from rarebird.sources.auditd.scan import GAP

FEED = load_datafeed().query.prefilter
START = datetime(2026, 1, 5, tzinfo=UTC)


def fleet_lines(days: int, seed: int, **log: object) -> list[bytes]:
    events = (
        e
        for e in generate_events(GeneratorOptions(days=days, hosts=3, users=3, seed=seed))
        if "start" in e.event_type
    )
    return list(audit_lines(events, AuditLogOptions(**log)))  # type: ignore[arg-type]


def run(path: Path, prefilter: Prefilter, scan: str, workers: int = 1) -> list[ProcessEvent]:
    extra = {"scan": scan, "workers": str(workers)}
    source = AuditdSource(str(path), SourceOptions(prefilter=prefilter, extra=extra))
    assert source.fast == (scan == "fast" and exe_needle(prefilter) is not None)
    return list(source)


def assert_same(path: Path, prefilter: Prefilter = FEED) -> list[ProcessEvent]:
    everything = run(path, Prefilter(), "full")
    expected = [e for e in everything if prefilter.holds(e)]
    assert run(path, prefilter, "full") == expected
    assert run(path, prefilter, "fast") == expected
    return expected


@pytest.fixture(scope="module")
def mixed_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two days of the demo fleet in three log styles, with the tricky records in between."""
    lines = fleet_lines(2, 7, enriched="separator", interleave=0.05)
    lines[1000:1000] = tricky_audit_lines()
    lines += fleet_lines(1, 8, enriched=None, node=True, eoe=False, first_serial=50_000)
    lines += fleet_lines(1, 9, enriched="glued", interleave=0.3, first_serial=80_000)
    path = tmp_path_factory.mktemp("auditd") / "mixed.log"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_fast_path_keeps_what_the_full_parse_keeps(mixed_log: Path) -> None:
    kept = assert_same(mixed_log)
    names = {e.process_name for e in kept}
    assert names == {"ss", "netstat", "route", "showmount"}
    executables = {e.process_executable for e in kept}
    assert {"/opt/net tools/ss", "/opt/réseau/netstat", "ss"} <= executables
    assert len(kept) > 1000


@pytest.mark.parametrize(
    "prefilter",
    [
        Prefilter(
            (FieldCondition("process.executable", frozenset({"/usr/bin/ss", "/opt/net tools/ss"})),)
        ),
        Prefilter((FieldCondition("process.name", frozenset({"netstat", "café", "sshd"})),)),
        Prefilter((FieldCondition("process.name", frozenset({"a/b"})),)),
        Prefilter((FieldCondition("user.name", frozenset({"alice"})),)),
    ],
    ids=["executable", "non-ascii-and-sshd", "impossible", "no-byte-condition"],
)
def test_other_prefilters(mixed_log: Path, prefilter: Prefilter) -> None:
    assert_same(mixed_log, prefilter)


def test_values_that_cannot_be_searched_exactly_fall_back_to_the_full_parse() -> None:
    for value in ("my tool", "", "x\ufffdy"):
        cond = FieldCondition("process.name", frozenset({"ss", value}))
        assert exe_needle(Prefilter((cond,))) is None


def test_a_record_after_a_line_longer_than_the_gap_starts_a_new_event(tmp_path: Path) -> None:
    # The grouping rule: a record joins the event only if it starts at most GAP bytes after
    # the event's previous record. An EXECVE line a little longer than GAP pushes the CWD
    # record that follows it past that limit: both paths must leave it out of the event.
    stamp = b"msg=audit(1700000000.100:42):"
    execve = b"type=EXECVE " + stamp + b' argc=2 a0="ss" a1='
    lines = [
        b"type=SYSCALL " + stamp + b" arch=c000003e syscall=59 success=yes exit=0 ppid=1 pid=2"
        b' auid=0 uid=0 gid=0 euid=0 egid=0 ses=1 tty=pts0 comm="ss" exe="/usr/bin/ss"',
        execve + b"A" * (GAP + 100 - len(execve)),
        b"type=CWD " + stamp + b' cwd="/root"',
    ]
    path = tmp_path / "long.log"
    path.write_bytes(b"\n".join(lines) + b"\n")
    (event,) = assert_same(path)
    assert event.process_name == "ss"
    assert event.process_working_directory is None


@pytest.mark.parametrize("piece", [None, 20_000], ids=["one-piece-each", "many-pieces"])
def test_worker_processes_give_the_same_events_in_the_same_order(
    mixed_log: Path, monkeypatch: pytest.MonkeyPatch, piece: int | None
) -> None:
    monkeypatch.setattr(auditd_module, "PARALLEL_MIN_BYTES", 0)
    if piece is not None:  # pieces of 20 kB: events across many boundaries, taken by any process
        monkeypatch.setattr(auditd_parallel, "MIN_PIECE", piece)
    one = AuditdSource(str(mixed_log), SourceOptions(prefilter=FEED))
    three = AuditdSource(str(mixed_log), SourceOptions(prefilter=FEED, extra={"workers": "3"}))
    assert list(three) == list(one)
    assert (three.stats.lines, three.stats.bytes, three.stats.events) == (
        one.stats.lines,
        one.stats.bytes,
        one.stats.events,
    )
    assert three.stats.prefiltered == one.stats.prefiltered


# --- random mutations -------------------------------------------------------------------------

BASE = fleet_lines(1, 11, enriched="separator", interleave=0.2)[:700] + tricky_audit_lines()
NOISE = [
    b"\x1d",
    b'"',
    b" ",
    b"=",
    b"\n",
    b"\x00",
    b"exe=",
    b"/ss",
    b"2F7373",
    b"\xff\xfe",
    b"type=EOE msg=",
]


def mutate(lines: list[bytes], rng: random.Random, count: int) -> list[bytes]:
    out = list(lines)
    for _ in range(count):
        i = rng.randrange(len(out))
        line = out[i]
        op = rng.randrange(9)
        if op == 0:
            del out[i]
        elif op == 1:
            out.insert(rng.randrange(len(out)), line)  # a copy somewhere else
        elif op == 2 and i + 1 < len(out):
            out[i], out[i + 1] = out[i + 1], line
        elif op == 3:
            out[i] = line[: rng.randrange(len(line) + 1)]
        elif op == 4:
            pos = rng.randrange(len(line) + 1)
            out[i] = line[:pos] + rng.choice(NOISE) + line[pos:]
        elif op == 5 and line:
            pos = rng.randrange(len(line))
            out[i] = line[:pos] + bytes([rng.randrange(256)]) + line[pos + 1 :]
        elif op == 6:
            out.insert(i, bytes(rng.randrange(256) for _ in range(rng.randrange(80))))
        elif op == 7:
            out[i] = line.replace(b"success=yes", b"success=no").replace(b'"', b"", 1)
        else:  # move a record to another event
            digits = bytes(str(rng.randrange(1000, 1400)), "ascii")
            out[i] = line.replace(b":10", b":" + digits[:2], 1)
    return out


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(seed=st.integers(0, 2**32 - 1), count=st.integers(1, 120), crlf=st.booleans())
def test_mutated_logs_lose_nothing(
    tmp_path_factory: pytest.TempPathFactory, seed: int, count: int, crlf: bool
) -> None:
    lines = mutate(BASE, random.Random(seed), count)
    path = tmp_path_factory.mktemp("mut") / "audit.log"
    path.write_bytes((b"\r\n" if crlf else b"\n").join(lines))
    assert_same(path)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(blob=st.binary(max_size=3000))
def test_arbitrary_bytes_never_crash_and_agree(
    tmp_path_factory: pytest.TempPathFactory, blob: bytes
) -> None:
    path = tmp_path_factory.mktemp("bin") / "audit.log"
    path.write_bytes(b"\n".join(tricky_audit_lines()[:14]) + blob + b'exe="/usr/bin/ss"\n')
    assert_same(path)
