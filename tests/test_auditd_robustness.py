"""Damaged audit logs: no crash, every intact event still produced, every bad line reported."""

from __future__ import annotations

import dataclasses
import random
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rarebird.definitions.datafeed import load_datafeed
from rarebird.events import ProcessEvent, SourceLocation
from rarebird.generate.auditd import AuditLogOptions, audit_lines, write_audit_log
from rarebird.generate.options import GeneratorOptions
from rarebird.generate.scenarios import generate_events
from rarebird.sources import Prefilter, SourceOptions
from rarebird.sources.auditd import AuditdSource
from rarebird.sources.auditd import fast as auditd_fast
from rarebird.sources.auditd.records import parse_header

NOT_A_RECORD = "auditd: not an audit record"
FEED = load_datafeed().query.prefilter
_STAMP = re.compile(rb"audit\(\d+\.\d+:\d+\):")


def clean_lines(days: int = 2, seed: int = 3) -> list[bytes]:
    events = (
        e
        for e in generate_events(GeneratorOptions(days=days, hosts=3, users=3, seed=seed))
        if "start" in e.event_type
    )
    return list(audit_lines(events, AuditLogOptions(enriched="separator")))


def parse(path: Path, scan: str = "full") -> tuple[list[ProcessEvent], AuditdSource]:
    """``full``: every exec event, every line read. ``fast``: the datafeed's prefilter, so
    the fast path (compare it with :func:`discovery`)."""
    prefilter = FEED if scan == "fast" else Prefilter()
    src = AuditdSource(str(path), SourceOptions(prefilter=prefilter, extra={"scan": scan}))
    return list(src), src


def discovery(events: list[ProcessEvent]) -> list[ProcessEvent]:
    """What the fast path must keep out of a full parse."""
    return [e for e in events if FEED.holds(e)]


def by_sequence(events: list[ProcessEvent]) -> dict[str, ProcessEvent]:
    return {e.get("auditd.sequence")[0]: e for e in events}


def test_ten_thousand_mutated_lines(tmp_path: Path) -> None:
    lines = clean_lines(days=3)
    clean = tmp_path / "clean.log"
    clean.write_bytes(b"\n".join(lines) + b"\n")
    before, _ = parse(clean)

    rng = random.Random(20260105)
    touched = sorted(rng.sample(range(len(lines)), 10_000))
    noise = [b"\x1d", b'"', b"=", b"\x00", b"\xff", b"ZZ", b"exe=", b"type=", b")", b"audit("]
    mutated = list(lines)
    for i in touched:
        line = lines[i]
        op = rng.randrange(6)
        if op == 0:  # truncated
            new = line[: rng.randrange(len(line))]
        elif op == 1:  # binary garbage instead of the record
            new = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 120)))
        elif op == 2:  # a byte flipped
            pos = rng.randrange(len(line))
            new = line[:pos] + bytes([rng.randrange(256)]) + line[pos + 1 :]
        elif op == 3:  # noise inserted
            pos = rng.randrange(len(line))
            new = line[:pos] + rng.choice(noise) + line[pos:]
        elif op == 4:  # invalid hex
            new = re.sub(rb"=([0-9A-F]{6,})", lambda m: b"=" + m.group(1)[:-1] + b"G", line)
        else:  # quotes lost
            new = line.replace(b'"', b"")
        mutated[i] = new.replace(b"\n", b"_").replace(b"\r", b"_")
    damaged = tmp_path / "damaged.log"
    damaged.write_bytes(b"\n".join(mutated) + b"\n")

    fast, src = parse(damaged, "fast")  # no exception, whatever the damage
    assert src.stats.lines == len(lines)
    after, src = parse(damaged, "full")
    assert src.stats.lines == len(lines)
    assert fast == discovery(after)

    # every event none of whose records was touched, and whose stamp no damaged line claims
    touched_set = set(touched)
    claimed = {m.group(0) for i in touched if (m := _STAMP.search(mutated[i]))}
    records_of: dict[bytes, list[int]] = {}
    for i, line in enumerate(lines):
        header = parse_header(line)
        assert header is not None
        records_of.setdefault(header.stamp, []).append(i)
    intact = {
        stamp.split(b":")[1].rstrip(b")").decode()
        for stamp, idx in records_of.items()
        if not touched_set.intersection(idx) and stamp not in claimed
    }
    assert len(intact) > 1000
    got = by_sequence(after)
    want = by_sequence(before)
    for seq in intact:
        assert got[seq] == dataclasses.replace(
            want[seq], origin=SourceLocation(str(damaged), want[seq].origin.line)
        )  # type: ignore[union-attr]

    # every line that is no longer a record is reported, with its file:line
    bad = [
        i + 1
        for i in touched
        if mutated[i].strip() and parse_header(mutated[i].rstrip(b"\r")) is None
    ]
    assert src.stats.skipped[NOT_A_RECORD] == len(bad)
    reported = [i.location.line for i in src.stats.issues if i.reason == NOT_A_RECORD]
    assert reported == bad[: len(reported)]
    assert all(i.location.path == str(damaged) for i in src.stats.issues)


def test_a_file_cut_in_the_middle_of_an_event(tmp_path: Path) -> None:
    lines = clean_lines(days=1)
    cut = b"\n".join(lines[:30]) + b"\n" + lines[30][:25]  # the 5th event's CWD record, cut
    path = tmp_path / "cut.log"
    path.write_bytes(cut)
    events, src = parse(path)
    assert len(events) == 5  # the 5th with what was written of it: SYSCALL and EXECVE
    assert events[4].process_args
    assert events[4].process_working_directory is None
    assert [i.location.line for i in src.stats.issues] == [31]
    assert parse(path, "fast")[0] == discovery(events)


def test_binary_garbage_between_events_is_reported_line_by_line(tmp_path: Path) -> None:
    lines = clean_lines(days=1)[:70]
    rng = random.Random(5)
    garbage = [
        bytes(rng.randrange(1, 256) for _ in range(200)).replace(b"\n", b"") for _ in range(3)
    ]
    path = tmp_path / "g.log"
    path.write_bytes(b"\n".join(lines[:35] + garbage + lines[35:]) + b"\n")
    events, src = parse(path)
    clean = tmp_path / "c.log"
    clean.write_bytes(b"\n".join(lines) + b"\n")
    assert [dataclasses.replace(e, origin=None) for e in events] == [
        dataclasses.replace(e, origin=None) for e in parse(clean)[0]
    ]
    assert [(i.location.line, i.reason) for i in src.stats.issues] == [
        (36, NOT_A_RECORD),
        (37, NOT_A_RECORD),
        (38, NOT_A_RECORD),
    ]


def test_a_line_longer_than_the_limit_is_reported_and_skipped(tmp_path: Path) -> None:
    lines = clean_lines(days=1)[:70]
    huge = b"type=EXECVE msg=audit(1767600000.000:1): argc=1 a0=" + b"41" * 2_500_000
    path = tmp_path / "long.log"
    path.write_bytes(b"\n".join(lines[:35] + [huge] + lines[35:]) + b"\n")
    clean = tmp_path / "c.log"
    clean.write_bytes(b"\n".join(lines) + b"\n")
    events, src = parse(path)
    assert [dataclasses.replace(e, origin=None) for e in events] == [
        dataclasses.replace(e, origin=None) for e in parse(clean)[0]
    ]
    assert [(i.location.line, i.reason) for i in src.stats.issues] == [(36, "line too long")]
    assert parse(path, "fast")[0] == discovery(events)


def test_a_one_megabyte_argument_on_one_line(tmp_path: Path) -> None:
    stamp = "audit(1767600000.000:77):"
    arg = "A" * 1_048_576
    path = tmp_path / "one.log"
    path.write_text(
        f"type=SYSCALL msg={stamp} arch=c000003e syscall=59 success=yes exit=0 items=1 ppid=1 "
        f'pid=2 auid=1000 uid=1000 gid=1000 euid=1000 tty=pts0 ses=2 comm="ss" exe="/usr/bin/ss" key=(null)\n'
        f'type=EXECVE msg={stamp} argc=2 a0="ss" a1="{arg}"\n'
        f"type=EOE msg={stamp}\n"
    )
    for scan in ("full", "fast"):
        [event], src = parse(path, scan)
        assert event.process_args == ("ss", arg)
        assert src.stats.skipped_total == 0


def test_an_empty_file_and_a_file_of_blank_lines(tmp_path: Path) -> None:
    for content in (b"", b"\n\n\r\n"):
        path = tmp_path / "empty.log"
        path.write_bytes(content)
        for scan in ("full", "fast"):
            events, src = parse(path, scan)
            assert events == []
            assert src.stats.skipped_total == 0


def test_a_line_longer_than_the_read_buffer(tmp_path: Path) -> None:
    lines = clean_lines(days=1)[:70]
    path = tmp_path / "huge.log"
    with open(path, "wb") as f:
        f.write(b"\n".join(lines[:35]) + b"\n")
        f.write(b'exe="/usr/bin/ss" ' * 2_500_000)  # 45 MB without a newline
        f.write(b"\n" + b"\n".join(lines[35:]) + b"\n")
    clean = tmp_path / "c.log"
    clean.write_bytes(b"\n".join(lines) + b"\n")
    events, src = parse(path)
    assert [dataclasses.replace(e, origin=None) for e in events] == [
        dataclasses.replace(e, origin=None) for e in parse(clean)[0]
    ]
    assert src.stats.lines == len(lines) + 1
    assert [(i.location.line, i.reason) for i in src.stats.issues] == [(36, "line too long")]
    fast, src = parse(path, "fast")
    assert fast == discovery(events)  # origins (file:line) included
    assert src.stats.lines == len(lines) + 1


def test_an_event_longer_than_the_read_buffer(tmp_path: Path) -> None:
    """18 MB of EXECVE records in one event (more than the kernel writes): the fast path grows
    its buffer and still finds it, as the full parse does."""
    big = "é" * 4_600_000  # 9.2 MB of UTF-8, 18.4 MB as hex
    events = [
        ProcessEvent(
            timestamp=datetime(2026, 1, 5, 10, i, tzinfo=UTC),
            user_id="1001",
            user_name="alice",
            process_executable="/usr/bin/ss",
            process_args=("ss", big) if i == 1 else ("ss", "-t"),
        )
        for i in range(3)
    ]
    path = tmp_path / "big.log"
    with open(path, "wb") as f:
        f.write((b"#" * 30_000 + b"\n") * 1100)  # 33 MB first: the event starts mid-buffer
        write_audit_log(events, f, AuditLogOptions())
    for scan in ("full", "fast"):
        found, src = parse(path, scan)
        assert [len(e.process_args[1]) for e in found] == [2, len(big), 2]
        assert (
            src.stats.skipped_total == 1100
        )  # the 1,100 lines of #: not audit records, on both paths
    assert parse(path, "fast")[0] == parse(path, "full")[0]


def test_an_event_longer_than_the_limit_is_reported_and_the_rest_still_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auditd_fast, "MAX_EVENT", 1024 * 1024)  # instead of 256 MB
    events = [
        ProcessEvent(
            timestamp=datetime(2026, 1, 5, 10, i, tzinfo=UTC),
            user_id="1001",
            user_name="alice",
            process_executable="/usr/bin/ss",
            process_args=("ss", "é" * 10_000_000) if i == 1 else ("ss", "-t"),
        )
        for i in range(3)
    ]
    path = tmp_path / "big.log"
    with open(path, "wb") as f:
        f.write((b"#" * 30_000 + b"\n") * 1100)
        write_audit_log(events, f, AuditLogOptions())
    found, src = parse(path, "fast")
    assert [e.process_args for e in found] == [("ss", "-t"), ("ss", "-t")]
    # the 1,100 lines of '#' before the log are not audit records; the long event is reported
    assert src.stats.skipped == {"auditd: not an audit record": 1100, "auditd: event too long": 1}
