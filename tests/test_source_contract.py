"""Every registered input format keeps the source contract (rarebird.testing.check_source).

Each sample in ``tests/samples/`` is written from its format's specification (the ECS field
reference, the Linux audit record format, Laurel's, Sysmon for Linux's and osquery's
documented output, RFC 4180), not produced by rarebird's own generators: an ``ss`` run through
``sudo`` (account ``root``, login user ``mallory``) and an ``ls`` by alice.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rarebird.events import ProcessEvent
from rarebird.sources import BUILTIN_FORMATS, format_names, merge_by_time
from rarebird.testing import ContractViolation, ListSource, SourceSample, check_source

SAMPLES_DIR = Path(__file__).parent / "samples"
SUDO = ("root", "mallory")


def data(name: str) -> bytes:
    return (SAMPLES_DIR / name).read_bytes()


SAMPLES = {
    s.format: s
    for s in (
        SourceSample(
            "ecs",
            data("ecs.ndjson"),
            "ss",
            b'{"@timestamp": "2026-03-02T10:00:03Z", "process": {"name": "ss"',  # cut short
            sudo=SUDO,
            file_name="ecs.ndjson",
        ),
        SourceSample(
            "auditd",
            data("auditd.log"),
            "ss",
            b"this line is not an audit record",
            bad_at=6,  # between the two events
            sudo=SUDO,
            file_name="audit.log",
        ),
        SourceSample(
            "laurel",
            data("laurel.log"),
            "ss",
            b'{"ID": "1772445602.000:102", "SYSCALL": {"exe": "/usr/bin/ss"',  # cut short
            sudo=SUDO,
            file_name="laurel.log",
        ),
        SourceSample(
            "sysmon",
            data("sysmon.log"),
            "ss",
            b"Mar  2 10:00:03 web-1 sysmon: <Event><System><EventID>1</EventID></System>"
            b'<EventData><Data Name="UtcTime">yesterday</Data>'
            b'<Data Name="Image">/usr/bin/ss</Data></EventData></Event>',
            sudo=SUDO,
            passwd=data("passwd"),  # Sysmon for Linux writes the login uid only
            file_name="syslog",
        ),
        SourceSample(
            "osquery",
            data("osquery.log"),
            "ss",
            b"osqueryd: this is not a results log line",
            sudo=SUDO,
            passwd=data("passwd"),  # osquery writes ids only
            file_name="osqueryd.results.log",
        ),
        SourceSample(
            "ocsf",
            data("ocsf.ndjson"),
            "ss",
            b'{"class_uid": 1007, "activity_id": 1, "time": 17724456',  # cut short
            sudo=SUDO,
            file_name="ocsf.ndjson",
        ),
        SourceSample(
            "csv",
            data("columnar.csv"),
            "ss",
            b"2026-03-02T10:00:03.000Z,alice",  # too few cells
            bad_at=1,  # after the header
            sudo=SUDO,
            file_name="events.csv",
        ),
    )
}


#: Binary formats: the contract's bad line cannot be put inside them; tests/test_parquet.py
#: holds Parquet to the events of the same documents in NDJSON instead.
BINARY = frozenset({"parquet"})


def test_every_built_in_format_has_a_sample() -> None:
    assert sorted(SAMPLES) == sorted(set(BUILTIN_FORMATS) - BINARY)


@pytest.mark.parametrize("fmt", [f for f in format_names() if f not in BINARY])
def test_the_source_contract(tmp_path: Path, fmt: str) -> None:
    events = check_source(SAMPLES[fmt], tmp_path)
    assert [(e.user_name, e.process_name) for e in events if e.process_name == "ss"][0] == (
        "root",
        "ss",
    )


def test_the_contract_says_what_is_broken(tmp_path: Path) -> None:
    wrong = replace(SAMPLES["ecs"], sudo=("root", "alice"))  # nobody logged in as alice
    with pytest.raises(ContractViolation, match="no event with user.audit.name 'alice'"):
        check_source(wrong, tmp_path)


def test_a_list_source_is_a_source() -> None:
    t0 = datetime(2026, 3, 2, tzinfo=UTC)
    one = ListSource([ProcessEvent(timestamp=t0, user_name="a")], name="one")
    two = ListSource([ProcessEvent(timestamp=t0.replace(hour=1), user_name="b")], name="two")
    merged = merge_by_time([two, one])
    assert [e.user_name for e in merged] == ["a", "b"]
    assert (merged.stats.events, merged.stats.lines, merged.name) == (2, 2, "two, one")
