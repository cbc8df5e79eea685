"""Cross-check with Debian's audit tools: every exec event agrees with ``ausearch -i``.

For every exec event ausearch finds (the shared corpora, generated logs in the RAW and
ENRICHED formats), the uid, auid, exe, arguments and working directory it interprets must be
ours. Names resolve the same way on both sides: from the ENRICHED fields, else from this
machine's ``/etc/passwd`` (``unknown(N)`` when neither knows the id). Skipped without
``ausearch`` (``.ci/run`` installs the ``auditd`` package).

Where the two deliberately differ (records interleaved with another event's, separators
stripped, hex that the kernel never writes) the difference is asserted, and explained, in
:func:`test_known_differences`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from rarebird.events import ProcessEvent
from rarebird.generate.auditd import AuditLogOptions, audit_lines, tricky_audit_lines
from rarebird.generate.options import GeneratorOptions
from rarebird.generate.scenarios import generate_events
from rarebird.sources import SourceOptions
from rarebird.sources.auditd import AuditdSource
from tests.conftest import shared_path

pytestmark = pytest.mark.skipif(
    shutil.which("ausearch") is None, reason="ausearch (Debian package auditd) is not installed"
)

_RECORD = re.compile(r"^(?:node=(\S+) )?type=(\S+) msg=audit\([^)]*:(\d+)\) : ?(.*)$")


@dataclass(frozen=True)
class Interpreted:
    """What ausearch -i says about one exec event."""

    uid: str
    auid: str
    exe: str
    args: list[str]
    cwd: str | None


def ausearch(path: Path) -> dict[tuple[str | None, int], Interpreted]:
    out = subprocess.run(
        ["ausearch", "-i", "--input", str(path)],
        capture_output=True,
        text=True,
        errors="surrogateescape",
        check=False,
    ).stdout
    events: dict[tuple[str | None, int], Interpreted] = {}
    for block in out.split("----\n"):
        records: dict[str, list[str]] = {}
        key: tuple[str | None, int] | None = None
        for line in block.splitlines():
            m = _RECORD.match(line)
            if m:
                node, rtype, serial, body = m.groups()
                records.setdefault(rtype, []).append(body)
                key = (node, int(serial))
        syscall = records.get("SYSCALL", [""])[0]
        if key is None or " syscall=execve " not in syscall:
            continue
        uid = re.search(r" uid=(\S+)", syscall)
        auid = re.search(r" auid=(\S+)", syscall)
        exe = re.search(r" exe=(.*?) (?:subj|key)=", syscall)
        assert uid, syscall
        assert auid, syscall
        assert exe, syscall
        cwd = records["CWD"][0].split("cwd=", 1)[1].rstrip(" ") if "CWD" in records else None
        events[key] = Interpreted(
            uid.group(1), auid.group(1), exe.group(1), _args(records.get("EXECVE", [])), cwd
        )
    return events


def _args(bodies: list[str]) -> list[str]:
    """EXECVE fields as ausearch prints them (records in reverse order, long arguments in chunks)."""
    values: dict[str, str] = {}
    for body in reversed(bodies):
        parts = re.split(r"(?:^| )(argc|a\d+(?:\[\d+\])?|a\d+_len)=", body.rstrip(" "))
        values.update(zip(parts[1::2], parts[2::2], strict=True))
    args = []
    for i in range(int(values.get("argc", "0"))):
        if f"a{i}" in values:
            args.append(values[f"a{i}"])
        else:
            chunks, k = [], 0
            while f"a{i}[{k}]" in values:
                chunks.append(values[f"a{i}[{k}]"])
                k += 1
            args.append("".join(chunks))
    return args


def ours(path: Path) -> dict[tuple[str | None, int], ProcessEvent]:
    src = AuditdSource(str(path), SourceOptions(passwd="/etc/passwd", extra={"scan": "full"}))
    return {(e.host_name, int(e.get("auditd.sequence")[0])): e for e in src}


def as_interpreted(ev: ProcessEvent) -> Interpreted:
    uid = ev.user_name or f"unknown({ev.user_id})"
    auid = ev.user_audit_name or (f"unknown({ev.user_audit_id})" if ev.user_audit_id else "unset")
    return Interpreted(
        uid, auid, ev.process_executable or "", list(ev.process_args), ev.process_working_directory
    )


def assert_agree(path: Path) -> int:
    theirs = ausearch(path)
    mine = ours(path)
    assert set(theirs) <= set(mine), path
    for key, interpreted in theirs.items():
        assert as_interpreted(mine[key]) == interpreted, (path, key)
    return len(theirs)


def corpus_logs() -> list[Path]:
    root = shared_path("corpora")
    return sorted(
        [
            *root.glob("audit-userspace/auparse/test/*.log"),
            *root.glob("go-libaudit/auparse/testdata/*.log"),
            *root.glob("go-libaudit/testdata/*.log"),
            *root.glob("laurel/src/testdata/*.txt"),
            *root.glob("laurel/src/testdata/tree/*.txt"),
        ]
    )


@pytest.mark.corpora
def test_every_exec_event_of_the_corpora_agrees_with_ausearch() -> None:
    total = sum(assert_agree(path) for path in corpus_logs())
    assert total == 59


@pytest.mark.parametrize("enriched", [None, "separator"], ids=["raw", "enriched"])
def test_every_exec_event_of_a_generated_fleet_agrees_with_ausearch(
    tmp_path: Path, enriched: str | None
) -> None:
    events = (
        e
        for e in generate_events(GeneratorOptions(days=1, hosts=3, users=3, seed=5))
        if "start" in e.event_type
    )
    path = tmp_path / "fleet.log"
    lines = list(audit_lines(events, AuditLogOptions(enriched=enriched, node=True, interleave=0.1)))
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert assert_agree(path) > 1000


def test_tricky_records_agree_with_ausearch_except_where_known(tmp_path: Path) -> None:
    lines = tricky_audit_lines()
    path = tmp_path / "tricky.log"
    path.write_bytes(b"\n".join(lines) + b"\n")
    theirs, mine = ausearch(path), ours(path)
    differ = {
        key[1] for key, interpreted in theirs.items() if as_interpreted(mine[key]) != interpreted
    }
    assert differ == {900005, 900014, 900015, 900017}
    assert len(theirs) == 22


def test_known_differences(tmp_path: Path) -> None:
    """Where we follow Elastic (go-libaudit) or read more than ausearch, on purpose."""
    path = tmp_path / "tricky.log"
    path.write_bytes(b"\n".join(tricky_audit_lines()) + b"\n")
    theirs, mine = ausearch(path), ours(path)
    # ENRICHED fields glued to the last raw one (separator stripped): we read them
    assert (mine[(None, 900005)].user_name, theirs[(None, 900005)].uid) == (
        "alice",
        "unknown(1001)",
    )
    # lower-case hex (never written by the kernel): ausearch decodes it, go-libaudit does not
    assert (mine[(None, 900014)].process_executable, theirs[(None, 900014)].exe) == (
        "2f7573722f62696e2f7373",
        "/usr/bin/ss",
    )
    # a NUL inside hex: go-libaudit turns it into a space, ausearch stops there
    assert (mine[(None, 900015)].process_executable, theirs[(None, 900015)].exe) == (
        "/usr/bin/ss ",
        "/usr/bin/ss",
    )
    # two SYSCALL records in one event: the first one names the process (go-libaudit)
    assert (mine[(None, 900017)].process_executable, theirs[(None, 900017)].exe) == (
        "/usr/bin/bash",
        "/usr/bin/ss",
    )

    # interleaved records of events 5 s apart: ausearch closes an event once a record 2 s newer
    # arrives; we group by stamp within 64 KiB of log, whatever the clock says
    a = [line for line in tricky_audit_lines() if b":900023)" in line]
    b = [
        line.replace(b"1767614424.000:900024", b"1767614429.000:900024")
        for line in tricky_audit_lines()
        if b":900024)" in line
    ]
    mixed = tmp_path / "mixed.log"
    mixed.write_bytes(b"\n".join(x for pair in zip(a, b, strict=False) for x in pair) + b"\n")
    theirs, mine = ausearch(mixed), ours(mixed)
    assert [theirs[(None, s)].args for s in (900023, 900024)] == [[], ["route"]]
    assert [mine[(None, s)].process_args for s in (900023, 900024)] == [("ss", "-a"), ("route",)]
