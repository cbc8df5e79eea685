"""The Linux discovery family: packaged jobs load, datafeeds select Elastic's tools, and one
pass over the input feeds every job (constructed input)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rarebird.datafeed.prefilter import union_prefilters
from rarebird.definitions.family import FAMILIES, datafeed_tools, load_packaged, select_jobs
from rarebird.run.engine import Engine
from rarebird.run.replay import replay_inputs_many
from rarebird.store import open_store
from rarebird.store.results import search_results

TOOLS = {
    "v3_linux_network_connection_discovery": ("netstat", "route", "showmount", "ss"),
    "v3_linux_network_configuration_discovery": (
        "arp", "echo", "ethtool", "ifconfig", "ip", "iptables", "ufw",
    ),
    "v3_linux_system_information_discovery": (
        "cat", "grep", "head", "hostname", "less", "ls", "lsmod", "more", "strings", "tail",
        "uname", "uptime",
    ),
    "v3_linux_system_process_discovery": ("ps", "top"),
    "v3_linux_system_user_discovery": ("users", "w", "who", "whoami"),
}  # fmt: skip
RULES = {
    "v3_linux_network_connection_discovery": ("c28c4d8c-f014-40ef-88b6-79a1d67cd499", 25),
    "v3_linux_network_configuration_discovery": ("f9590f47-6bd5-4a49-bd49-a2f886476fb9", 25),
    "v3_linux_system_information_discovery": ("d4af3a06-1e0a-48ec-b96a-faf2309fae46", 75),
    "v3_linux_system_process_discovery": ("5c983105-4681-46c3-9890-0c66d05e776b", 50),
    "v3_linux_system_user_discovery": ("59756272-1998-4b8c-be14-e287035c4d10", 75),
}


def doc(ts: datetime, user: str, tool: str) -> str:
    return json.dumps({
        "@timestamp": ts.isoformat().replace("+00:00", "Z"),
        "event": {"type": ["start"], "category": ["process"], "kind": "event"},
        "host": {"name": "h1", "os": {"type": "linux"}},
        "process": {"name": tool, "args": [tool]},
        "user": {"name": user},
    })  # fmt: skip


def test_each_packaged_job_loads_with_elastics_tools_and_rule() -> None:
    assert FAMILIES["linux-discovery"] == tuple(TOOLS)
    for job_id, tools in TOOLS.items():
        d = load_packaged(job_id)
        assert d.job.job_id == job_id
        assert datafeed_tools(d.datafeed) == tools
        assert d.rule is not None
        assert (d.rule.rule_id, d.rule.anomaly_threshold) == RULES[job_id]
        assert d.rule.machine_learning_job_id == (job_id,)


def test_union_prefilter_keeps_every_tool_of_the_family() -> None:
    defs = select_jobs(families=["linux-discovery"], with_rule=False)
    union = union_prefilters([d.datafeed.query.prefilter for d in defs])
    cond = union.condition_for("process.name")
    assert cond is not None
    assert cond.values == frozenset(t for tools in TOOLS.values() for t in tools)
    assert union.condition_for("event.type") is not None


def test_one_pass_feeds_each_job_its_own_tools(tmp_path: Path) -> None:
    start = datetime(2026, 1, 5, tzinfo=UTC)
    lines = []
    for h in range(72):  # three days of root running every tool of the family, hourly
        for tools in TOOLS.values():
            lines.append(doc(start + timedelta(hours=h), "root", tools[0]))
    late = start + timedelta(hours=72, minutes=5)
    lines.append(doc(late, "mallory", "whoami"))  # constructed: a new user's first whoami
    lines.append(doc(late + timedelta(hours=3), "root", "ps"))
    path = tmp_path / "events.ndjson"
    path.write_text("\n".join(lines) + "\n")
    defs = select_jobs(families=["linux-discovery"], with_rule=False)
    with open_store(str(tmp_path / "s.db")) as store:
        engines = [Engine(store, d.job, d.datafeed) for d in defs]
        summary = replay_inputs_many(engines, [str(path)])
        assert summary.read.lines == len(lines)  # the input was read once
        matched = {job_id: r.events for job_id, r in summary.reports}
        assert matched["v3_linux_system_user_discovery"] == 72 + 1
        assert matched["v3_linux_system_process_discovery"] == 72 + 1
        assert matched["v3_linux_network_connection_discovery"] == 72
        for job_id in TOOLS:
            page = search_results(store, "record", job_ids=[job_id], limit=None)
            users = {d["by_field_value"] for _, d in page.hits}
            if job_id == "v3_linux_system_user_discovery":
                assert "mallory" in users
            else:
                assert "mallory" not in users


def test_jobs_list_shows_every_packaged_job_and_its_rule() -> None:
    from click.testing import CliRunner

    from rarebird.cli import main

    res = CliRunner().invoke(main, ["jobs", "list", "--format", "json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert [r["job_id"] for r in rows] == list(TOOLS)
    for r in rows:
        assert tuple(r["tools"]) == TOOLS[r["job_id"]]
        assert (r["rule_id"], r["anomaly_threshold"]) == RULES[r["job_id"]]


def test_job_run_jobs_family_gives_the_seed_job_the_records_of_the_default(
    tmp_path: Path,
) -> None:
    from click.testing import CliRunner

    from rarebird.cli import main

    start = datetime(2026, 1, 5, tzinfo=UTC)
    lines = [doc(start + timedelta(hours=h), "root", "netstat") for h in range(48)]
    lines.append(doc(start + timedelta(hours=48, minutes=3), "eve", "ss"))  # constructed
    lines.append(doc(start + timedelta(hours=48, minutes=4), "eve", "whoami"))
    path = tmp_path / "seed.ndjson"
    path.write_text("\n".join(lines) + "\n")
    seed_job = "v3_linux_network_connection_discovery"
    found = {}
    for name, extra in (("default", []), ("family", ["--jobs", "linux-discovery"])):
        store = tmp_path / f"{name}.db"
        res = CliRunner().invoke(
            main, ["job", "run", "--store", str(store), "-q", *extra, str(path)]
        )
        assert res.exit_code == 0, res.output
        with open_store(str(store)) as st:
            page = search_results(st, "record", job_ids=[seed_job], limit=None)
            found[name] = sorted(json.dumps(d, sort_keys=True) for _, d in page.hits)
            user = search_results(
                st, "record", job_ids=["v3_linux_system_user_discovery"], limit=None
            )
            found[name + "-user"] = [d["by_field_value"] for _, d in user.hits]
    assert found["default"]
    assert found["default"] == found["family"]
    assert found["default-user"] == []
    assert found["family-user"] == []  # eve is the only user of whoami: not rare by user


def test_detect_family_alerts_carry_each_jobs_own_rule(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from rarebird.cli import main

    start = datetime(2026, 1, 5, tzinfo=UTC)
    lines = []
    for h in range(72):  # two admins run every tool of the family, hourly
        for tools in TOOLS.values():
            lines.append(doc(start + timedelta(hours=h), "root", tools[0]))
            lines.append(doc(start + timedelta(hours=h, minutes=1), "admin", tools[0]))
    late = start + timedelta(hours=72, minutes=5)
    lines.append(doc(late, "mallory", "whoami"))  # constructed: a new user's first whoami
    lines.append(doc(late, "trent", "ifconfig"))  # and another's first ifconfig
    path = tmp_path / "events.ndjson"
    path.write_text("\n".join(lines) + "\n")
    store = tmp_path / "d.db"
    res = CliRunner().invoke(
        main, ["detect", "--store", str(store), "--format", "json", "--jobs", "linux-discovery",
               str(path)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert f"{len(lines):,} lines read once for 5 jobs" in res.stderr
    alerts = json.loads(res.stdout)
    got = set()
    for a in alerts:
        user = a["user.name"] if "user.name" in a else a["user"]["name"]
        got.add((user[0] if isinstance(user, list) else user, a["kibana.alert.rule.rule_id"]))
    assert ("trent", RULES["v3_linux_network_configuration_discovery"][0]) in got, res.stderr
    assert all(user in ("mallory", "trent") for user, _ in got)
