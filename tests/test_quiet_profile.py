"""``--profile quiet``: what it keeps and quiets, a host's first discovery run, its state, and
``detect --profile quiet`` on a small labelled fleet beside the default (Elastic's) rule."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from rarebird.cli import main
from rarebird.clock import FixedClock
from rarebird.definitions.profile_settings import settings_from
from rarebird.definitions.service import (
    AlertsConfig,
    BackfillConfig,
    FollowConfig,
    ServeConfig,
    config_from_dict,
)
from rarebird.errors import DefinitionError
from rarebird.events import ProcessEvent
from rarebird.explain import RecordFacts, explain
from rarebird.rules.profile import DAY_MS, MINUTE_MS, QuietProfile, profile_for
from rarebird.serve.service import Service
from rarebird.store.alerts import list_alerts
from rarebird.store.profiles import load_profile_state
from rarebird.store.sqlite import Store
from rarebird.timeutil import from_epoch_ms
from rarebird.web.app import create_app
from tests.serve_support import Recorder, turn

START = int(datetime(2026, 3, 2, tzinfo=UTC).timestamp() * 1000)


def _ev(ms: int, user: str, tool: str = "ss", host: str = "web-01", uid: str | None = None) -> ProcessEvent:  # fmt: skip
    return ProcessEvent(timestamp=from_epoch_ms(ms), user_name=user, user_id=uid,
                        process_name=tool, host_name=host)  # fmt: skip


def _profile(*runs: tuple[int, str, str, str, str | None, bool]) -> QuietProfile:
    p = QuietProfile("job", 900)
    for ms, user, tool, host, uid, matched in sorted(runs, key=lambda r: r[0]):
        p.observe(_ev(ms, user, tool, host, uid), matched)
    p.finalize(_bucket(max(r[0] for r in runs)) + 900_000)
    return p


def _at(day: int, hour: int = 10, minute: int = 0) -> int:
    return START + day * DAY_MS + hour * 3_600_000 + minute * MINUTE_MS


def _bucket(ms: int) -> int:
    return ms - ms % 900_000


def _history() -> list[tuple[int, str, str, str, str | None, bool]]:
    runs: list[tuple[int, str, str, str, str | None, bool]] = []
    for day in range(22):  # the monitoring account, every day
        runs.append((_at(day, 1), "monitor", "ss", "web-01", "995", True))
    runs += [
        (_at(1), "alice", "netstat", "web-01", "1001", True),  # alice: regular
        (_at(3), "alice", "ss", "web-01", "1001", True),
        (_at(2), "bob", "netstat", "web-01", "1002", True),  # bob: once before
        (_at(3), "carl", "netstat", "web-01", "1004", True),  # carl: once before
        (_at(2), "backup", "netstat", "web-01", "600", True),  # a service account, once before
        (_at(0), "root", "ls", "lab-01", "0", False),  # lab-01: busy, no discovery tool
    ]
    return runs


def test_the_quiet_profile_keeps_newcomers_bursts_and_service_accounts_and_quiets_regulars() -> (
    None
):
    late = [
        (_at(20), "alice", "ss", "web-01", "1001", True),
        (_at(20), "mallory", "ss", "web-01", "1010", True),
        (_at(20), "bob", "ss", "web-01", "1002", True),
        (_at(20), "backup", "ss", "web-01", "600", True),
        (_at(21, 3, 0), "carl", "ss", "web-01", "1004", True),  # carl: 3 tools in 4 minutes
        (_at(21, 3, 2), "carl", "route", "web-01", "1004", True),
        (_at(21, 3, 4), "carl", "netstat", "web-01", "1004", True),
        (_at(21, 9, 0), "alice", "ss", "web-01", "1001", True),  # regular alice troubleshoots
        (_at(21, 9, 2), "alice", "route", "web-01", "1001", True),
        (_at(21, 9, 4), "alice", "netstat", "web-01", "1001", True),
        (_at(5), "carol", "ss", "web-01", "1003", True),  # new during the 14-day warm-up
    ]
    p = _profile(*_history(), *late)
    got = {(u, b): (d.keep, d.reason) for (u, b), d in p.decisions.items() if b >= _bucket(_at(20))}
    assert got == {
        ("alice", _bucket(_at(20))): (False, "regular"),
        ("mallory", _bucket(_at(20))): (True, "first_occurrence"),
        ("bob", _bucket(_at(20))): (False, "seen_before"),
        ("backup", _bucket(_at(20))): (True, "service_account"),
        ("monitor", _bucket(_at(21, 1))): (False, "regular"),
        ("carl", _bucket(_at(21, 3))): (True, "burst"),
        ("alice", _bucket(_at(21, 9))): (False, "regular"),
    }
    # decisions only live a day (the rule looks back 45 minutes): older ones are gone
    assert not [k for k in p.decisions if k[0] == "carol"]


def test_a_warm_up_decision_quiets_a_new_user() -> None:
    p = QuietProfile("job", 900)
    p.observe(_ev(_at(0), "monitor"), True)
    p.observe(_ev(_at(5), "carol"), True)
    p.finalize(_at(5) + 900_000)
    assert p.decisions[("carol", _bucket(_at(5)))].reason == "warm_up"


def test_return_after_a_long_absence_is_kept() -> None:
    p = QuietProfile("job", 900)
    p.observe(_ev(_at(0), "ann"), True)
    p.observe(_ev(_at(1), "ann"), True)
    p.observe(_ev(_at(40), "ann"), True)
    p.finalize(_at(41))
    assert p.decisions[("ann", _bucket(_at(40)))].reason == "returned"


def _doc(user: str, ms: int) -> dict[str, Any]:
    return {"by_field_value": user, "timestamp": _bucket(ms), "record_score": 50.0}


def test_host_first_discovery_after_a_day_of_the_hosts_data_is_a_record_of_its_own() -> None:
    p = _profile(*_history(), (_at(20, 4, 22), "root", "ss", "lab-01", "0", True),
                 (_at(20, 4, 23), "root", "netstat", "lab-01", "0", True),
                 (_at(20, 5), "root", "ss", "new-01", "0", True))  # fmt: skip
    # new-01's first event is a discovery run: learned, not alerted
    lo, hi = from_epoch_ms(_at(20, 4)), from_epoch_ms(_at(20, 6))
    out = p.select([], lo, hi)  # the job found nothing: root is not rare
    ids = [rid for rid, _ in out]
    assert ids == ["job_rarebird_host_first_" + f"{_bucket(_at(20, 4, 22))}_lab-01_root"]
    doc = out[0][1]
    assert doc["by_field_value"] == "root"
    assert doc["record_score"] == 0.0
    assert doc["host.name"] == ["lab-01"]
    assert doc["process.name"] == ["ss", "netstat"]
    fields = p.annotate(ids[0])
    assert fields["rarebird.profile.reason"] == "host_first"
    words = explain(RecordFacts.from_docs({**doc, **fields}, None))
    assert words.summary == "first discovery run on this host"
    assert "19 day(s) before without any" in words.lines[0]


def test_select_drops_what_the_profile_quieted_and_keeps_what_it_never_saw() -> None:
    p = _profile(*_history(), (_at(20), "alice", "ss", "web-01", "1001", True),
                 (_at(20), "mallory", "ss", "web-01", "1010", True))  # fmt: skip
    hits = [("a", _doc("alice", _at(20))), ("m", _doc("mallory", _at(20))),
            ("x", _doc("unseen", _at(20)))]  # fmt: skip
    out = p.select(hits, from_epoch_ms(_at(19)), from_epoch_ms(_at(21)))
    assert [rid for rid, _ in out] == ["m", "x"]
    assert p.quieted == {"a"}
    assert p.annotate("m")["rarebird.profile.reason"] == "first_occurrence"
    assert p.annotate("x") == {}


def test_state_is_versioned_json_and_round_trips() -> None:
    p = _profile(*_history(), (_at(20), "mallory", "ss", "web-01", "1010", True))
    p.observe(_ev(_at(22), "zed"), True)  # pending, not yet final
    text = orjson.dumps(p.to_state())
    q = QuietProfile("job", 900)
    q.restore(orjson.loads(text))
    assert orjson.dumps(q.to_state()) == text
    assert orjson.loads(text)["version"] == 1
    with pytest.raises(ValueError, match="version 2"):
        q.restore({**orjson.loads(text), "version": 2})
    assert profile_for("default", "job", 900, "user.name") is None


# --- on a small labelled fleet -------------------------------------------------------------


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("quiet")
    subprocess.run(
        [sys.executable, "-m", "rarebird", "generate", "--profile", "labelled", "--hosts", "8",
         "--days", "24", "--file", str(d / "fleet.ndjson"), "--labels", str(d / "labels.csv")],
        check=True, capture_output=True,
    )  # fmt: skip
    return d


def _detect(d: Path, name: str, *extra: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(
        main, ["detect", "--store", str(d / f"{name}.db"), "--identity", "login", "--format",
               "json", "-q", *extra, str(d / "fleet.ndjson")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    alerts: list[dict[str, Any]] = json.loads(result.stdout)
    return alerts


def test_detect_quiet_on_the_labelled_fleet_alerts_every_attack_and_never_later(fleet: Path) -> None:  # fmt: skip
    default = _detect(fleet, "default")
    quiet = _detect(fleet, "quiet", "--profile", "quiet")
    assert len(default) == 29
    # evaluate scores the 18 of them after its 14-day warm-up (test_evaluate: the same fleet)
    assert sum(1 for a in default if a["kibana.alert.original_time"] >= "2026-02-16") == 18
    assert [(a["user"]["name"][0], a["rarebird.profile.reason"]) for a in quiet] == [
        ("erin", "first_occurrence"),
        ("erin", "burst"),
        ("www-data", "first_occurrence"),
        ("frank", "first_occurrence"),  # the attacker behind sudo, with --identity login
        ("root", "host_first"),  # root's first discovery run on lab-01
    ]
    by_id = {a["kibana.alert.uuid"]: a for a in default}
    for a in quiet:
        if a["rarebird.profile.reason"] == "host_first":
            assert a["host"]["name"] == ["lab-01"]
            assert a["record_score"] == 0.0
            continue
        same = by_id[a["kibana.alert.uuid"]]  # the default's alert, at the same time
        assert a["@timestamp"] == same["@timestamp"]
        assert "rarebird.profile.reason" not in same
    # the profile's state is saved with the job's, as versioned JSON
    store = Store.open(str(fleet / "quiet.db"), create=False)
    try:
        state = load_profile_state(store, "v3_linux_network_connection_discovery", "quiet")
        assert state is not None
        assert state["version"] == 1
        assert "lab-01" in state["hosts_discovery"]
        assert load_profile_state(Store.open(str(fleet / "default.db")), "x", "quiet") is None
    finally:
        store.close()


def _ecs(ms: int, user: str, line: str, host: str = "vm-lab") -> dict[str, Any]:
    args = line.split()
    return {
        "@timestamp": from_epoch_ms(ms).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "event": {"category": ["process"], "type": ["start"], "action": "executed",
                  "module": "auditd"},
        "host": {"name": host, "os": {"type": "linux"}},
        "process": {"name": args[0], "args": args, "executable": f"/usr/bin/{args[0]}"},
        "user": {"name": user, "id": "0"},
    }  # fmt: skip


def _quiet_serve(store: Path, follow: FollowConfig) -> ServeConfig:
    """serve with the quiet profile, backfilling (with alerts) 20 days of the followed input."""
    return ServeConfig(
        store=str(store), follow=(follow,),
        backfill=BackfillConfig(max_age=timedelta(days=20), alerts=True),
        alerts=AlertsConfig(profile="quiet"),
    )  # fmt: skip


def _serve_once(config: ServeConfig, now: datetime) -> list[Any]:
    """Start serve at ``now``, let it run a minute of its clock, stop it; every stored alert."""
    clock = FixedClock(now)
    service = Service(config, clock=clock, log=Recorder())
    service.open()
    turn(service, clock, seconds=60)
    service.close()
    store = Store.open(config.store, create=False)
    try:
        return list(list_alerts(store))
    finally:
        store.close()


def test_a_hosts_first_discovery_run_is_alerted_where_the_faithful_job_sees_nothing(tmp_path: Path) -> None:  # fmt: skip
    """A lab capture's shape: one VM for two weeks, root its only user, 12 reconnaissance runs
    of ss/netstat from day 3 on. One user runs the tools, so nothing about it is rare to the job;
    the quiet profile alerts the host's first run, once."""
    docs = [_ecs(_at(day, hour), "root", "ls -la") for day in range(14) for hour in range(0, 24, 2)]
    recon = [_at(3 + i, 14, 5) for i in range(11)] + [_at(13, 20, 40)]
    docs += [_ecs(ms + k * 40_000, "root", tool) for ms in recon
             for k, tool in enumerate(("ss -tunap", "netstat -antp"))]  # fmt: skip
    docs.sort(key=lambda d: d["@timestamp"])
    capture = tmp_path / "capture.ndjson"
    capture.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in docs))

    def detect(name: str, *extra: str) -> list[dict[str, Any]]:
        result = CliRunner().invoke(main, ["detect", "--store", str(tmp_path / name), "--format",
                                           "json", "-q", *extra, str(capture)])  # fmt: skip
        assert result.exit_code == 0, result.output
        alerts: list[dict[str, Any]] = json.loads(result.stdout)
        return alerts

    assert detect("default.db") == []
    quiet = detect("quiet.db", "--profile", "quiet")
    assert [(a["kibana.alert.original_time"], a["rarebird.profile.reason"]) for a in quiet] == [
        (from_epoch_ms(_bucket(recon[0])).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
         "host_first"),
    ]  # fmt: skip
    assert quiet[0]["host"]["name"] == ["vm-lab"]
    assert "first network discovery run on this host" in quiet[0]["rarebird.profile.explanation"]
    why = CliRunner().invoke(main, ["triage", "--store", str(tmp_path / "quiet.db"),
                                    quiet[0]["kibana.alert.uuid"]])  # fmt: skip
    assert why.exit_code == 0, why.output
    assert "The quiet profile raised this alert: the first network discovery run on this host (seen for 3 day(s)" in why.output  # fmt: skip
    # and the alert page of `rarebird ui` says the same
    app = create_app(str(tmp_path / "quiet.db"), token="t" * 32, allowed_hosts=None)
    with TestClient(app, base_url="http://127.0.0.1:8765", follow_redirects=False) as c:
        assert c.get(f"/login?token={'t' * 32}&next=/alerts").status_code == 303
        page = c.get(f"/alerts/{quiet[0]['kibana.alert.uuid']}").text
    assert "The quiet profile raised this alert" in page

    # serve with `profile = "quiet"` in [alerts]: the same alert (one engine), across a restart
    # 8 hours before the first run -- the host's first event (day 0) comes from the saved state
    followed = tmp_path / "followed.ndjson"
    lines = capture.read_bytes().splitlines(keepends=True)
    cut = next(i for i, d in enumerate(docs) if d["@timestamp"] >= "2026-03-05T06:00")
    followed.write_bytes(b"".join(lines[:cut]))
    config = _quiet_serve(tmp_path / "serve.db", FollowConfig(path=str(followed)))
    for now, part in ((_at(3, 6, 10), b""), (_at(14), b"".join(lines[cut:]))):
        with followed.open("ab") as f:
            f.write(part)
        served = _serve_once(config, from_epoch_ms(now))
    assert [a.id for a in served] == [quiet[0]["kibana.alert.uuid"]]
    assert served[0].doc["rarebird.profile.reason"] == "host_first"


def test_the_quiet_profile_does_not_combine_with_early_warning() -> None:
    with pytest.raises(DefinitionError, match="alert_on_interim"):
        config_from_dict({"store": "x.db", "alerts": {"profile": "quiet", "alert_on_interim": True}},
                         "rarebird.toml")  # fmt: skip
    with pytest.raises(DefinitionError, match="'loud' is not a profile"):
        config_from_dict({"store": "x.db", "alerts": {"profile": "loud"}}, "rarebird.toml")


def test_a_new_hosts_first_run_is_alerted_only_when_it_is_more_than_routine() -> None:
    """A host the fleet never saw (no day of history): after the warm-up its first discovery
    run is alerted when it is more tools at once than the user ever ran together."""
    history = [(_at(day, 3), "root", "netstat", f"web-0{h}", "0", True)
               for day in range(20) for h in (1, 2)]  # root's cron: one tool a day  # fmt: skip
    p = _profile(
        *history, *_history(),
        (_at(20, 4, 22), "root", "ss", "lab-02", "0", True),  # two tools at once, new host
        (_at(20, 4, 23), "root", "netstat", "lab-02", "0", True),
        (_at(20, 5), "monitor", "ss", "web-09", "995", True),  # a new server's monitoring
        (_at(5, 4), "ops", "ss", "lab-03", "1020", True),  # during the warm-up
        (_at(5, 4, 1), "ops", "netstat", "lab-03", "1020", True),
    )  # fmt: skip
    out = p.select([], from_epoch_ms(_at(0)), from_epoch_ms(_at(21)))
    assert [rid for rid, _ in out] == [f"job_rarebird_host_first_{_bucket(_at(20, 4, 22))}_lab-02_root"]  # fmt: skip
    assert "host new to the fleet, 2 different tools" in p.annotate(out[0][0])["rarebird.profile.explanation"]  # fmt: skip


# --- the profile's settings -----------------------------------------------------------------------


def test_settings_change_what_the_profile_decides() -> None:
    """A shorter warm-up keeps a newcomer the default warm-up quiets; more regular days make a
    two-day runner no longer regular."""
    runs = [(_at(0), "monitor", "ss", "web-01", None, True), (_at(5), "carol", "ss", "web-01", None, True)]  # fmt: skip
    for settings, reason in ((None, "warm_up"), (settings_from({"warm_up_days": "3"}), "first_occurrence")):  # fmt: skip
        p = QuietProfile("job", 900, settings=settings)
        for ms, user, tool, host, uid, matched in runs:
            p.observe(_ev(ms, user, tool, host, uid), matched)
        p.finalize(_at(5) + 900_000)
        assert p.decisions[("carol", _bucket(_at(5)))].reason == reason
    late = [(_at(20), "alice", "ss", "web-01", "1001", True)]
    default = _profile(*_history(), *late)
    assert default.decisions[("alice", _bucket(_at(20)))].reason == "regular"
    strict = QuietProfile("job", 900, settings=settings_from({"regular_days": 3}))
    for ms, user, tool, host, uid, matched in sorted([*_history(), *late], key=lambda r: r[0]):
        strict.observe(_ev(ms, user, tool, host, uid), matched)
    strict.finalize(_bucket(_at(20)) + 900_000)
    assert strict.decisions[("alice", _bucket(_at(20)))].reason == "seen_before"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"warmup_days": 3}, "unknown quiet-profile setting 'warmup_days' (known: absence_days, "),
        ({"burst_tools": "three"}, "burst_tools: expected a whole number, got 'three'"),
        ({"burst_tools": True}, "burst_tools: expected a whole number, got True"),
        ({"burst_tools": 1}, "burst_tools: must be at least 2"),
        ({"absence_days": 0}, "absence_days: must be at least 1"),
        ({"regular_days": 30}, "regular_days (30) cannot exceed regular_window_days (28)"),
    ],
)
def test_a_wrong_setting_is_refused_in_words(given: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        settings_from(given)


def test_profile_settings_on_the_command_line(fleet: Path) -> None:
    quiet = _detect(
        fleet, "quiet-warm-0", "--profile", "quiet", "--profile-setting", "warm-up-days=0"
    )
    assert [(a["user"]["name"][0], a["rarebird.profile.reason"]) for a in quiet][:2] == [
        ("dave", "first_occurrence"),  # days 1-14 are no longer a warm-up
        ("erin", "first_occurrence"),
    ]
    assert len(quiet) == 6
    for args, message in (
        (("--profile-setting", "warm_up_days=3"), "--profile-setting goes with --profile quiet"),
        (("--profile", "quiet", "--profile-setting", "warm_up_days"), "expected NAME=VALUE"),
        (("--profile", "quiet", "--profile-setting", "loud=1"), "unknown quiet-profile setting"),
    ):
        res = CliRunner().invoke(main, ["detect", "--store", str(fleet / "x.db"), *args,
                                        str(fleet / "fleet.ndjson")])  # fmt: skip
        assert res.exit_code == 2, res.output
        assert message in res.output
    assert not (fleet / "x.db").exists()


def test_profile_settings_in_serves_configuration() -> None:
    cfg = config_from_dict({"store": "x.db", "alerts": {"profile": "quiet", "quiet": {
        "warm_up_days": 7, "burst_minutes": 5}}}, "rarebird.toml")  # fmt: skip
    assert cfg.alerts.quiet == settings_from({"warm_up_days": 7, "burst_minutes": 5})
    assert config_from_dict({"store": "x.db"}, "rarebird.toml").alerts.quiet is None
    with pytest.raises(DefinitionError, match=r"alerts\.quiet.*go with profile = \"quiet\""):
        config_from_dict({"store": "x.db", "alerts": {"quiet": {"warm_up_days": 7}}}, "rarebird.toml")  # fmt: skip
    with pytest.raises(DefinitionError, match=r"alerts\.quiet.*burst_tools: must be at least 2"):
        config_from_dict({"store": "x.db", "alerts": {"profile": "quiet", "quiet": {
            "burst_tools": 1}}}, "rarebird.toml")  # fmt: skip


def _raw_exec(when: float, serial: int, exe: str, argv: list[str]) -> str:
    """One execve as auditd writes it in its RAW log format (auditd.conf ``log_format = RAW``:
    ids, no names; see audit.rules(7) and the kernel's audit record formats)."""
    stamp = f"{when:.3f}:{serial}"
    args = " ".join(f'a{i}="{a}"' for i, a in enumerate(argv))
    return (
        f"type=SYSCALL msg=audit({stamp}): arch=c000003e syscall=59 success=yes exit=0 a0=55d1 "
        f"a1=55d2 a2=55d3 a3=0 items=2 ppid=1234 pid={2000 + serial} auid=1000 uid=0 gid=0 "
        f'euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=3 comm="{argv[0]}" '
        f'exe="{exe}" key="exec"\n'
        f"type=EXECVE msg=audit({stamp}): argc={len(argv)} {args}\n"
        f'type=CWD msg=audit({stamp}): cwd="/root"\n'
        f'type=PATH msg=audit({stamp}): item=0 name="{exe}" inode=1234 dev=fd:01 mode=0100755 '
        "ouid=0 ogid=0 rdev=00:00 nametype=NORMAL\n"
        f"type=PROCTITLE msg=audit({stamp}): proctitle={' '.join(argv).encode().hex().upper()}\n"
    )


def test_a_lab_vms_first_run_is_alerted_when_the_runs_are_days_apart(tmp_path: Path) -> None:
    """A lab capture in auditd's RAW format: one VM, root alone (via sudo), ordinary commands
    every two hours for six days, and discovery runs on day 2 and day 5 only. The faithful job
    raises nothing (one user, nothing rare about them); the quiet profile alerts the host's
    first run, though the next matched event comes three days later (the rule's runs in
    between are replayed after it: the profile must still hold its decision then). uid 0 is
    named root without a passwd file."""
    start = datetime(2026, 3, 2, tzinfo=UTC).timestamp()
    runs = [(start + h * 3600 + 17, "/usr/bin/ls", ["ls", "-la"]) for h in range(0, 6 * 24, 2)]
    runs += [(start + 2 * 86400 + 5 * 3600 + 600, "/usr/bin/ss", ["ss", "-tulpn"]),
             (start + 5 * 86400 + 9 * 3600 + 60, "/usr/bin/netstat", ["netstat", "-antp"])]  # fmt: skip
    runs.sort()
    log = tmp_path / "audit.log"
    log.write_text(
        "".join(_raw_exec(t, 100 + i, exe, argv) for i, (t, exe, argv) in enumerate(runs))
    )
    got = {}
    for profile in ("default", "quiet"):
        res = CliRunner().invoke(main, ["detect", "--store", str(tmp_path / f"{profile}.db"),
                                        "--profile", profile, "--host-name", "lab-vm",
                                        "--format", "json", "-q", str(log)])  # fmt: skip
        assert res.exit_code == 0, res.output
        got[profile] = json.loads(res.stdout)
    assert got["default"] == []
    (alert,) = got["quiet"]
    assert alert["user"]["name"] == ["root"]
    assert alert["host"]["name"] == ["lab-vm"]
    assert alert["rarebird.profile.reason"] == "host_first"
    assert alert["kibana.alert.original_time"] == "2026-03-04T05:00:00.000Z"
    assert "seen for 2 day(s) before" in alert["rarebird.profile.explanation"]
    # serve, backfilling the whole capture at once, raises the same alert
    config = _quiet_serve(tmp_path / "serve.db", FollowConfig(path=str(log), host_name="lab-vm"))
    served = _serve_once(config, datetime(2026, 3, 9, tzinfo=UTC))
    assert [a.id for a in served] == [alert["kibana.alert.uuid"]]
