"""Grouping audit records into events, as real logs write them (issue 10).

Real ``audit.log`` files written by auditd with ``log_format = ENRICHED`` and a ``node=`` name
often have no ``EOE`` record after an event, and a record of one event is sometimes written
after the next event's records (CPUs interleave). The fixtures are lines in the audit record
format (``node=NAME type=TYPE msg=audit(SECONDS.MILLIS:SERIAL): fields``, resolved names after
a ``0x1d`` byte), written by hand from that format, not by rarebird's generator.

The rule (``rarebird.sources.auditd.scan``): records named by the same node and stamp are one
event until its ``EOE``, or until GAP bytes pass after its last record. Both readers (the full
parse and the prefiltered fast path) must give the same events, with or without ``EOE``,
however the records are interleaved, and neither may hold an event open for longer than that
bound (checked by the position in the input at which each event comes out).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from rarebird.definitions.datafeed import load_datafeed
from rarebird.errors import ReadStats
from rarebird.events import ProcessEvent
from rarebird.sources import SourceOptions
from rarebird.sources.auditd import AuditdSource
from rarebird.sources.auditd import scan as scan_module
from rarebird.sources.auditd.events import build_context
from rarebird.sources.auditd.exe_search import exe_needle
from rarebird.sources.auditd.fast import fast_scan_for
from rarebird.sources.auditd.scan import GAP, scan_full
from rarebird.sources.identity import load_accounts

FEED = load_datafeed().query.prefilter


def execve(node: str, stamp: str, user: str, uid: int, exe: str, argv: list[str]) -> list[str]:
    """The records of one execve(2) as the kernel logs them (ENRICHED), without an EOE."""
    head = f"node={node} type="
    msg = f"msg=audit({stamp}):"
    ids = " ".join(f"{k}={uid}" for k in ("auid", "uid", "gid", "euid", "suid", "fsuid"))
    names = " ".join(f'{k}="{user}"' for k in ("AUID", "UID", "GID", "EUID", "SUID", "FSUID"))
    args = " ".join(f'a{i}="{a}"' for i, a in enumerate(argv))
    title = "00".join(a.encode().hex().upper() for a in argv)
    return [
        f"{head}SYSCALL {msg} arch=c000003e syscall=59 success=yes exit=0 a0=55d1 a1=55d2 "
        f"a2=55d3 a3=8 items=2 ppid=4100 pid=4242 {ids} egid={uid} sgid={uid} fsgid={uid} "
        f'tty=pts0 ses=3 comm="{argv[0]}" exe="{exe}" subj=unconfined key="exec"'
        f"\x1dARCH=x86_64 SYSCALL=execve {names}",
        f"{head}EXECVE {msg} argc={len(argv)} {args}",
        f'{head}CWD {msg} cwd="/home/{user}"',
        f'{head}PATH {msg} item=0 name="{exe}" inode=2211 dev=fd:00 mode=0100755 ouid=0 '
        "ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 "
        'cap_frootid=0\x1dOUID="root" OGID="root"',
        f"{head}PROCTITLE {msg} proctitle={title}",
    ]


def eoe(event: list[str]) -> list[str]:
    stamp = event[0].split("msg=", 1)[1].split(" ", 1)[0]
    node = event[0].split(" ", 1)[0]
    return [*event, f"{node} type=EOE msg={stamp} "]


A = execve("web-01", "1764547200.100:500", "alice", 1000, "/usr/bin/ss", ["ss", "-tunap"])
B = execve("web-01", "1764547200.104:501", "bob", 1001, "/usr/sbin/sshd", ["sshd", "-D"])
C = execve("web-02", "1764547200.100:500", "carol", 1002, "/bin/netstat", ["netstat", "-an"])
D = execve("web-01", "1764547201.250:502", "dave", 1003, "/usr/sbin/route", ["route", "-n"])


def write(path: Path, lines: list[str]) -> Path:
    path.write_bytes("".join(x + "\n" for x in lines).encode())
    return path


def read(path: Path, scan: str) -> list[ProcessEvent]:
    return list(AuditdSource(str(path), SourceOptions(prefilter=FEED, extra={"scan": scan})))


def summary(events: list[ProcessEvent]) -> list[tuple[str | None, ...]]:
    """What grouping decides: whose exec it was, its arguments, where it was run."""
    return [
        (e.host_name, e.user_name, e.process_name, " ".join(e.process_args), e.process_title)
        for e in events
    ]


def both(path: Path) -> list[tuple[str | None, ...]]:
    full, fast = read(path, "full"), read(path, "fast")
    assert fast == full
    return summary(full)


EXPECTED = [
    ("web-01", "alice", "ss", "ss -tunap", "ss -tunap"),
    ("web-02", "carol", "netstat", "netstat -an", "netstat -an"),
    ("web-01", "dave", "route", "route -n", "route -n"),
]


@pytest.mark.parametrize("with_eoe", [True, False], ids=["eoe", "no-eoe"])
def test_the_same_events_with_and_without_eoe(tmp_path: Path, with_eoe: bool) -> None:
    wrap = eoe if with_eoe else (lambda x: x)
    lines = [*wrap(A), *wrap(B), *wrap(C), *wrap(D)]
    assert both(write(tmp_path / "audit.log", lines)) == EXPECTED


def with_eoes(lines: list[str]) -> list[str]:
    """An EOE after the last record of each event, wherever that record was written."""
    last = {
        line.split(" type=", 1)[0] + line.split("msg=", 1)[1].split(" ", 1)[0]: i
        for i, line in enumerate(lines)
    }
    ends = {i: lines[i].split(" type=", 1)[0] for i in last.values()}
    out = []
    for i, line in enumerate(lines):
        out.append(line)
        if i in ends:
            stamp = line.split("msg=", 1)[1].split(" ", 1)[0]
            out.append(f"{ends[i]} type=EOE msg={stamp} ")
    return out


@pytest.mark.parametrize("with_eoe", [True, False], ids=["eoe", "no-eoe"])
def test_a_record_written_after_the_next_events_records_is_grouped_with_its_own(
    tmp_path: Path, with_eoe: bool
) -> None:
    # A's EXECVE comes after B's records, C's PROCTITLE after D's SYSCALL: records of another
    # node with the same stamp as A (C) sit in between
    lines = [A[0], *A[2:], *B, A[1], *C[:4], D[0], C[4], *D[1:]]
    if with_eoe:
        lines = with_eoes(lines)
        assert sum("type=EOE" in x for x in lines) == 4
    assert both(write(tmp_path / "audit.log", lines)) == EXPECTED


def test_the_same_stamp_on_two_nodes_is_two_events(tmp_path: Path) -> None:
    # A and C share "audit(1764547200.100:500)": interleaved record by record
    lines = [x for pair in zip(A, C, strict=True) for x in pair]
    assert both(write(tmp_path / "audit.log", lines)) == EXPECTED[:2]


def test_the_stamp_inside_another_record_is_not_one_of_the_events_records(
    tmp_path: Path,
) -> None:
    # a user message quoting A's stamp in its text, between A's SYSCALL and its other records
    quote = (
        "node=web-01 type=USER_CMD msg=audit(1764547200.101:503): pid=9 uid=0 auid=0 ses=1 "
        "msg='cmd=\"echo node=web-01 type=EXECVE msg=audit(1764547200.100:500): argc=1 "
        "a0=x\" res=success'"
    )
    lines = [A[0], quote, *A[1:], *D]
    assert both(write(tmp_path / "audit.log", lines)) == [EXPECTED[0], EXPECTED[2]]


def filler(n_bytes: int, first_serial: int) -> list[str]:
    """Records of other (non-exec) events, about ``n_bytes`` of them."""
    out: list[str] = []
    size, serial = 0, first_serial
    while size < n_bytes:
        line = (
            f"node=web-01 type=USER_ACCT msg=audit(1764547200.200:{serial}): pid=77 uid=0 "
            "auid=1000 ses=3 subj=unconfined msg='op=PAM:accounting grantors=pam_unix "
            'acct="alice" exe="/usr/sbin/sshd" hostname=10.0.0.7 addr=10.0.0.7 terminal=ssh '
            'res=success\'\x1dUID="root" AUID="alice"'
        )
        out.append(line)
        size, serial = size + len(line) + 1, serial + 1
    return out


@pytest.mark.parametrize(
    ("distance", "joined"), [(GAP - 4096, True), (GAP + 4096, False)], ids=["within", "beyond"]
)
def test_an_event_without_eoe_closes_once_gap_bytes_have_passed(
    tmp_path: Path, distance: int, joined: bool
) -> None:
    # A's EXECVE written `distance` bytes after its SYSCALL: within GAP it is A's, beyond it
    # the event has closed (A has no arguments, the late EXECVE is an event of its own without a SYSCALL)
    late_execve = A[1].replace('a1="-tunap"', 'a1="-s"').replace("argc=2", "argc=2")
    lines = [A[0], *A[2:], *filler(distance, 600), late_execve, *D]
    [a, d] = both(write(tmp_path / "audit.log", lines))
    assert a[3] == ("ss -s" if joined else "")
    assert d == EXPECTED[2]


def no_eoe_log(events: int) -> tuple[bytes, list[int]]:
    """``events`` discovery execs without EOE (some records late), and each SYSCALL's offset."""
    lines: list[str] = []
    held: list[str] = []
    for i in range(events):
        ev = execve("web-01", f"1764547200.{i % 1000:03d}:{1000 + i}", "alice", 1000,
                    "/usr/bin/ss", ["ss", "-tunap"])  # fmt: skip
        late = [ev.pop()] if i % 50 == 7 else []
        lines += ev + held
        held = late
    lines += held
    data = "".join(x + "\n" for x in lines).encode()
    offsets = [m.start() for m in re.finditer(rb"(?m)^node=web-01 type=SYSCALL", data)]
    return data, offsets


class CountingStream(io.RawIOBase):
    """A stream that remembers how many bytes have been handed out."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        chunk = self._data[self.position : self.position + min(len(b), 4096)]
        b[: len(chunk)] = chunk
        self.position += len(chunk)
        return len(chunk)


@pytest.mark.parametrize("path", ["full", "fast"])
def test_open_events_are_bounded_events_come_out_as_the_input_is_read(
    monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    # a small window, so that a few MB of input are many windows
    monkeypatch.setattr(scan_module, "CHUNK", 64 * 1024)
    monkeypatch.setattr("rarebird.sources.auditd.fast.CHUNK", 64 * 1024)
    monkeypatch.setattr("rarebird.sources.auditd.fast.MARGIN", 64 * 1024)
    monkeypatch.setattr("rarebird.sources.auditd.fast.HISTORY", 2 * GAP)
    data, offsets = no_eoe_log(6000)
    raw = CountingStream(data)
    stream = io.BufferedReader(raw, buffer_size=4096)
    stats = ReadStats()
    max_line = 16 * 1024
    options = SourceOptions(prefilter=FEED, max_line_bytes=max_line)
    if path == "full":
        ctx = build_context("mem", load_accounts(None, None), None, stats)
        events = scan_full(stream, "mem", stats, ctx, FEED.holds, max_line)
    else:
        needle = exe_needle(FEED)
        assert needle is not None
        events = fast_scan_for(
            "mem", options, stats, needle, accounts=load_accounts(None, None)
        ).run(stream)
    lag = []
    for i, event in enumerate(events):
        assert event.process_args == ("ss", "-tunap")
        lag.append(raw.position - offsets[i])
    assert len(lag) == 6000
    # each event comes out once the reader is at most a window (and GAP) past it: what is held
    # open does not grow with the input
    window = 64 * 1024 + 2 * GAP + 64 * 1024  # CHUNK + HISTORY + MARGIN (the fast path's)
    assert max(lag) <= window + GAP + 8192
    assert len(data) > 10 * max(lag)


# --- real logs -----------------------------------------------------------------------------------


def corpus_logs() -> list[Path]:
    from tests.conftest import SHARED

    root = SHARED / "corpora"
    out = []
    for folder in ("audit-userspace", "go-libaudit", "laurel"):
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and path.stat().st_size < 10_000_000:
                with open(path, "rb") as f:
                    if b"msg=audit(" in f.read(4096):
                        out.append(path)
    return out


@pytest.mark.corpora
def test_real_logs_group_alike_in_both_readers_with_and_without_eoe(tmp_path: Path) -> None:
    """The public sample logs (audit-userspace, go-libaudit, laurel), as written and with
    their EOE records removed: the fast path keeps what the full parse keeps, for a prefilter
    naming every executable that runs in them."""
    from rarebird.sources import FieldCondition, Prefilter

    logs = corpus_logs()
    if not logs:
        pytest.skip("../shared/corpora is absent")
    compared = 0
    for path in logs:
        for strip in (False, True):
            data = path.read_bytes()
            if strip:
                data = b"".join(x for x in data.splitlines(True) if b"type=EOE " not in x)
            copy = tmp_path / f"{path.name}.{int(strip)}"
            copy.write_bytes(data)
            everything = list(AuditdSource(str(copy), SourceOptions(extra={"scan": "full"})))
            names = {e.process_name for e in everything if e.process_name}
            names = {n for n in names if "/" not in n and " " not in n}
            if not names:
                continue
            pf = Prefilter((FieldCondition("process.name", frozenset(names)),))
            full = [e for e in everything if pf.holds(e)]
            fast = list(AuditdSource(str(copy), SourceOptions(prefilter=pf)))
            assert fast == full, path
            compared += 1
    assert compared >= 40
