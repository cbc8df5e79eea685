"""``job run``, ``detect`` and ``serve`` are one engine: the same input with the same options
gives the same anomaly records (and ``detect`` and ``serve`` the same alerts), for ECS and raw
auditd, with Elastic's identity and with the login identity behind sudo.

The scenario is constructed (5-second buckets, the fast definitions of ``serve_support``):
routine monitoring by three service accounts, then ``mallory`` logs in and runs ``ss`` through
``sudo``: ``user.name`` is ``root`` and the login user (``user.audit.name`` / ``auid``) is
mallory. The raw auditd lines are written here by hand in the kernel's record format (SYSCALL,
EXECVE, PROCTITLE; no EOE, ``node=`` prefixes), not by rarebird's generator.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from rarebird.cli import main
from rarebird.clock import FixedClock
from rarebird.definitions.service import BackfillConfig, FollowConfig, ServeConfig
from rarebird.serve.service import Service
from rarebird.store import open_store
from rarebird.store.alerts import list_alerts
from rarebird.store.results import search_results
from tests.serve_support import SPAN, Recorder, history, turn, write_definitions, write_lines

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SUDO_AT = T0 - timedelta(seconds=61)
UIDS = {"root": 0, "monitor": 1000, "nagios": 1001, "backup": 1002, "mallory": 1003}
PASSWD = "".join(f"{name}:x:{uid}:{uid}::/home/{name}:/bin/sh\n" for name, uid in UIDS.items())


def scenario() -> list[dict[str, Any]]:
    docs = history(T0, 240)
    sudo = {
        "@timestamp": SUDO_AT.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "event": {"kind": "event", "category": ["process"], "type": ["start"]},
        "user": {"name": "root", "id": "0", "audit": {"name": "mallory", "id": "1003"}},
        "host": {"name": "web-2", "os": {"type": "linux"}},
        "process": {"name": "ss", "args": ["ss", "-tunap"], "parent": {"name": "sudo"}},
    }
    docs.append(sudo)
    docs.sort(key=lambda d: str(d["@timestamp"]))
    return docs


def audit_lines(docs: list[dict[str, Any]]) -> str:
    """The same events as the kernel's audit records (``node=`` host, numeric ids)."""
    out = []
    for serial, doc in enumerate(docs, start=100):
        when = datetime.fromisoformat(doc["@timestamp"].replace("Z", "+00:00"))
        stamp = f"{when.timestamp():.3f}:{serial}"
        uid = UIDS[doc["user"]["name"]]
        auid = UIDS[doc["user"].get("audit", {}).get("name", doc["user"]["name"])]
        proc = doc["process"]["name"]
        node = doc["host"]["name"]
        args = doc["process"]["args"]
        out.append(
            f"node={node} type=SYSCALL msg=audit({stamp}): arch=c000003e syscall=59 success=yes "
            f"exit=0 a0=55d1 a1=55d2 a2=55d3 a3=0 items=2 ppid=4000 pid={5000 + serial} "
            f"auid={auid} uid={uid} gid={uid} euid={uid} suid={uid} fsuid={uid} egid={uid} "
            f'sgid={uid} fsgid={uid} tty=pts0 ses=3 comm="{proc}" exe="/usr/bin/{proc}" '
            "key=(null)"
        )
        argv = " ".join(f'a{i}="{a}"' for i, a in enumerate(args))
        out.append(f"node={node} type=EXECVE msg=audit({stamp}): argc={len(args)} {argv}")
        title = "00".join(a.encode().hex().upper() for a in args)
        out.append(f"node={node} type=PROCTITLE msg=audit({stamp}): proctitle={title}")
    return "\n".join(out) + "\n"


def records(store_path: Path) -> list[tuple[str, str, float, float]]:
    with open_store(str(store_path), create=False) as store:
        hits = search_results(store, "record", order="time").hits
    return sorted(
        (doc["timestamp"], doc["by_field_value"], round(doc["probability"], 12),
         round(doc["record_score"], 6))
        for _, doc in hits
    )  # fmt: skip


def alert_ids(store_path: Path) -> list[str]:
    with open_store(str(store_path), create=False) as store:
        return sorted(a.id for a in list_alerts(store))


@pytest.mark.parametrize("fmt", ["ecs", "auditd"])
@pytest.mark.parametrize("identity", ["user", "login"])
def test_job_run_detect_and_serve_model_the_same_users(
    tmp_path: Path, fmt: str, identity: str
) -> None:
    defs = write_definitions(tmp_path / "defs")
    docs = scenario()
    data = tmp_path / ("events.ndjson" if fmt == "ecs" else "audit.log")
    if fmt == "ecs":
        write_lines(data, docs, "w")
    else:
        data.write_text(audit_lines(docs))
    passwd = tmp_path / "passwd"
    passwd.write_text(PASSWD)
    options = ["--input-format", fmt, "--identity", identity, "--passwd", str(passwd)]
    runner = CliRunner()

    job_store = tmp_path / "job.db"
    out = runner.invoke(main, ["job", "run", "--store", str(job_store), "--renormalize",
                               "--quiet", *defs.flags()[:4], *options, str(data)])  # fmt: skip
    assert out.exit_code == 0, out.output
    detect_store = tmp_path / "detect.db"
    out = runner.invoke(main, ["detect", "--store", str(detect_store), "--quiet", *defs.flags(),
                               "--format", "json", *options, str(data)])  # fmt: skip
    assert out.exit_code == 0, out.output

    clock = FixedClock(T0 + timedelta(seconds=2 * SPAN))
    follow = FollowConfig(path=str(data), format=fmt, identity=identity, passwd=str(passwd))
    config = ServeConfig(
        store=str(tmp_path / "serve.db"), job=str(defs.job), datafeed=str(defs.datafeed),
        rule=str(defs.rule), follow=(follow,),
        backfill=BackfillConfig(max_age=timedelta(hours=1), alerts=True),
    )  # fmt: skip
    service = Service(config, clock=clock, log=Recorder())
    service.open()
    while service.run_once():
        pass
    turn(service, clock, seconds=60)
    service.close()
    serve_store = tmp_path / "serve.db"

    modelled = records(detect_store)
    assert modelled, "the scenario makes anomaly records"
    assert records(job_store) == modelled
    assert records(serve_store) == modelled
    sudo_bucket = int((SUDO_AT.timestamp() // SPAN) * SPAN * 1000)
    users_at_sudo = {user for ts, user, _, _ in modelled if ts == sudo_bucket}
    assert users_at_sudo == ({"mallory"} if identity == "login" else {"root"})
    assert alert_ids(serve_store) == alert_ids(detect_store)
    assert json.loads(out.output) or identity == "user"  # the login identity alerts on mallory
