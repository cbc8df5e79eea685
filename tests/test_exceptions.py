"""Exception items with Elastic's semantics: every entry type and operator, dotted and nested
fields, arrays, value lists, expiry; rarebird's schedule windows and allow-lists."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

import pytest

from rarebird.errors import DefinitionError
from rarebird.rules.exceptions import (
    AllowList,
    ExceptionItem,
    ExceptionSet,
    ExistsEntry,
    ListEntry,
    MatchAnyEntry,
    MatchContext,
    MatchEntry,
    NestedEntry,
    ScheduleWindow,
    ValueList,
    WildcardEntry,
    entry_from_elastic,
    parse_entry_text,
)

# An anomaly record as Elastic stores it: by field and influencers copied as dotted keys.
RECORD: dict[str, Any] = {
    "job_id": "v3_linux_network_connection_discovery",
    "result_type": "record",
    "record_score": 72.5,
    "is_interim": False,
    "by_field_name": "user.name",
    "by_field_value": "alice",
    "user.name": ["alice"],
    "host.name": ["web-1", "web-2"],
    "process.name": ["ss"],
    "process.args": ["-tunap,ss"],
    "influencers": [
        {"influencer_field_name": "host.name", "influencer_field_values": ["web-1", "web-2"]},
        {"influencer_field_name": "process.name", "influencer_field_values": ["ss"]},
    ],
}
# The same facts the way an ECS alert document nests them.
NESTED: dict[str, Any] = {
    "user": {"name": ["alice"]},
    "host": {"name": ["web-1"], "ip": ["10.1.2.3"]},
    "process": {"name": ["ss"], "parent": {"name": "cron"}},
}
CTX = MatchContext()


def holds(entry: Any, doc: dict[str, Any] = RECORD, ctx: MatchContext = CTX) -> bool:
    return bool(entry.holds(doc, ctx))


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (MatchEntry("user.name", "alice"), True),
        (MatchEntry("user.name", "Alice"), False),  # keyword: case-sensitive
        (MatchEntry("user.name", "alice", "excluded"), False),
        (MatchEntry("user.name", "bob", "excluded"), True),
        (MatchEntry("host.name", "web-2"), True),  # any element of an array
        (MatchEntry("record_score", "72.5"), True),  # numbers compare as numbers
        (MatchEntry("record_score", "72.50"), True),
        (MatchEntry("is_interim", "false"), True),
        (MatchEntry("no.such.field", "x", "excluded"), True),  # must_not holds on a missing field
        (MatchAnyEntry("user.name", ("bob", "alice")), True),
        (MatchAnyEntry("user.name", ("bob", "carol")), False),
        (MatchAnyEntry("user.name", ("bob", "alice"), "excluded"), False),
        (MatchAnyEntry("user.name", ("bob", "carol"), "excluded"), True),
        (ExistsEntry("process.args"), True),
        (ExistsEntry("process.parent.name"), False),
        (ExistsEntry("process.parent.name", "excluded"), True),
        (ExistsEntry("process.args", "excluded"), False),
        (WildcardEntry("host.name", "web-*"), True),
        (WildcardEntry("host.name", "web-?"), True),
        (WildcardEntry("host.name", "web-??"), False),
        (WildcardEntry("host.name", "WEB-*"), False),
        (WildcardEntry("process.args", "*tunap*"), True),
        (WildcardEntry("process.args", r"\*tunap*"), False),  # escaped star is literal
        (WildcardEntry("host.name", "db-*", "excluded"), True),
        (WildcardEntry("host.name", "web-*", "excluded"), False),
    ],
)
def test_entry_types_and_operators_on_an_anomaly_record(entry: Any, expected: bool) -> None:
    assert holds(entry) is expected


def test_nested_objects_and_dotted_keys_are_the_same_field() -> None:
    assert holds(MatchEntry("user.name", "alice"), NESTED)
    assert holds(MatchEntry("process.parent.name", "cron"), NESTED)
    mixed = {"process": {"parent.name": "cron"}, "host.os": {"type": "linux"}}
    assert holds(MatchEntry("process.parent.name", "cron"), mixed)
    assert holds(MatchEntry("host.os.type", "linux"), mixed)
    arrays_of_objects = {"hosts": [{"name": "a"}, {"name": ["b", "c"]}]}
    assert holds(MatchEntry("hosts.name", "c"), arrays_of_objects)
    assert not holds(MatchEntry("hosts.name", "d"), arrays_of_objects)


def test_nested_entry_needs_one_object_to_satisfy_all_sub_entries() -> None:
    same_object = NestedEntry(
        "influencers",
        (
            MatchEntry("influencer_field_name", "host.name"),
            MatchEntry("influencer_field_values", "web-2"),
        ),
    )
    across_objects = NestedEntry(
        "influencers",
        (
            MatchEntry("influencer_field_name", "process.name"),
            MatchEntry("influencer_field_values", "web-2"),
        ),
    )
    assert holds(same_object)
    assert not holds(across_objects)  # "ss" and "web-2" are in different influencer objects
    assert not holds(NestedEntry("no_such", (ExistsEntry("x"),)))


def test_value_lists_by_type() -> None:
    lists = {
        "admins": ValueList("admins", "keyword", frozenset({"root", "alice"})),
        "nets": ValueList(
            "nets", "ip_range", frozenset({"10.0.0.0/8", "192.168.1.10-192.168.1.20"})
        ),
        "ips": ValueList("ips", "ip", frozenset({"10.1.2.3"})),
        "words": ValueList("words", "text", frozenset({"Web 1"})),
    }
    ctx = MatchContext(lists)
    assert holds(ListEntry("user.name", "admins"), RECORD, ctx)
    assert not holds(ListEntry("user.name", "admins", operator="excluded"), RECORD, ctx)
    assert holds(ListEntry("host.ip", "nets", "ip_range"), NESTED, ctx)
    assert holds(ListEntry("host.ip", "ips", "ip"), NESTED, ctx)
    assert holds(ListEntry("host.name", "words", "text"), NESTED, ctx)
    assert lists["nets"].contains("192.168.1.15")
    assert not lists["nets"].contains("192.168.1.21")
    # a list that does not exist: the entry does not hold, and the id is reported
    assert not holds(ListEntry("user.name", "gone"), RECORD, ctx)
    assert ctx.missing_lists == {"gone"}


def item(*entries: Any, **kw: Any) -> ExceptionItem:
    return ExceptionItem(item_id=kw.pop("item_id", "i1"), list_id="l", name="n",
                         entries=tuple(entries), **kw)  # fmt: skip


def test_and_within_an_item_or_across_items() -> None:
    both = item(MatchEntry("user.name", "alice"), MatchEntry("host.name", "db-1"))
    assert ExceptionSet((both,)).first_match(RECORD) is None  # AND: host does not match
    second = item(MatchEntry("process.name", "ss"), item_id="i2")
    found = ExceptionSet((both, second)).first_match(RECORD)  # OR: the second one holds
    assert found is not None
    assert found.item_id == "i2"


def test_expired_items_are_not_applied() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    old = item(MatchEntry("user.name", "alice"), expire_time=datetime(2026, 2, 28, tzinfo=UTC))
    fresh = item(MatchEntry("user.name", "alice"), expire_time=datetime(2026, 3, 2, tzinfo=UTC))
    assert ExceptionSet((old,)).active(now).items == ()
    assert ExceptionSet((fresh,)).active(now).items == (fresh,)


def test_os_types_restrict_to_host_os_so_never_match_an_anomaly_record() -> None:
    linux_only = item(MatchEntry("user.name", "alice"), os_types=("linux",))
    assert ExceptionSet((linux_only,)).first_match(RECORD) is None
    assert ExceptionSet((linux_only,)).first_match({**RECORD, "host.os.type": "linux"})


# --- schedule windows -----------------------------------------------------------------------


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


def test_window_crossing_midnight() -> None:
    w = ScheduleWindow.parse("Fri 22:00-06:00 UTC")
    assert w.days == frozenset({4})
    assert (w.start, w.end) == (time(22), time(6))
    # Friday 2026-01-09
    assert not w.contains(utc(2026, 1, 9, 21, 59, 59))
    assert w.contains(utc(2026, 1, 9, 22, 0))
    assert w.contains(utc(2026, 1, 9, 23, 59))
    assert w.contains(utc(2026, 1, 10, 0, 0))  # Saturday morning belongs to Friday's window
    assert w.contains(utc(2026, 1, 10, 5, 59, 59))
    assert not w.contains(utc(2026, 1, 10, 6, 0))  # end is exclusive
    assert not w.contains(utc(2026, 1, 10, 22, 30))  # Saturday night is not a window start
    assert not w.contains(utc(2026, 1, 9, 3, 0))  # Friday early morning: Thursday's, not listed


def test_window_in_a_named_zone_across_spring_forward() -> None:
    # Europe/Berlin jumps from 02:00 CET to 03:00 CEST on Sunday 2026-03-29 (01:00 UTC).
    w = ScheduleWindow.parse("Sun 01:00-04:00 Europe/Berlin")
    assert not w.contains(utc(2026, 3, 28, 23, 59))  # 00:59 CET
    assert w.contains(utc(2026, 3, 29, 0, 0))  # 01:00 CET
    assert w.contains(utc(2026, 3, 29, 1, 0))  # 03:00 CEST: 02:xx never happened
    assert w.contains(utc(2026, 3, 29, 1, 59))  # 03:59 CEST
    assert not w.contains(utc(2026, 3, 29, 2, 0))  # 04:00 CEST: the window lasted 2 hours
    # the skipped hour itself: a window over it is empty that day
    skipped = ScheduleWindow.parse("Sun 02:00-03:00 Europe/Berlin")
    assert not any(skipped.contains(utc(2026, 3, 29, 0, m)) for m in range(0, 60, 5))
    assert not any(skipped.contains(utc(2026, 3, 29, 1, m)) for m in range(0, 60, 5))


def test_window_in_a_named_zone_across_fall_back() -> None:
    # Europe/Berlin goes back from 03:00 CEST to 02:00 CET on Sunday 2026-10-25 (01:00 UTC).
    w = ScheduleWindow.parse("Sun 02:00-03:00 Europe/Berlin")
    assert not w.contains(utc(2026, 10, 24, 23, 59))  # 01:59 CEST
    assert w.contains(utc(2026, 10, 25, 0, 0))  # 02:00 CEST, first time
    assert w.contains(utc(2026, 10, 25, 1, 0))  # 02:00 CET, second time
    assert w.contains(utc(2026, 10, 25, 1, 59))  # 02:59 CET
    assert not w.contains(utc(2026, 10, 25, 2, 0))  # 03:00 CET: the window lasted 2 hours


def test_window_parsing_and_errors() -> None:
    assert str(ScheduleWindow.parse("02:00-04:00")) == "daily 02:00-04:00 UTC"
    assert str(ScheduleWindow.parse("sat,sun 00:00-24:00 UTC")) == "Sat,Sun 00:00-24:00 UTC"
    all_day = ScheduleWindow.parse("Sat 00:00-24:00")
    assert all_day.contains(utc(2026, 1, 10, 0, 0))
    assert all_day.contains(utc(2026, 1, 10, 23, 59))
    assert not all_day.contains(utc(2026, 1, 11, 0, 0))
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        ScheduleWindow.parse("Sat 01:00-02:00 Mars/Olympus")
    with pytest.raises(ValueError, match="not a weekday: 'Sab'"):
        ScheduleWindow.parse("Sab 01:00-02:00")
    with pytest.raises(ValueError, match="not a time of day: '25:00'"):
        ScheduleWindow.parse("Sat 25:00-02:00")


def test_an_item_with_a_window_needs_the_anomaly_time_inside_it() -> None:
    maint = item(MatchEntry("user.name", "alice"),
                 windows=(ScheduleWindow.parse("Sat 02:00-04:00 UTC"),))  # fmt: skip
    rules = ExceptionSet((maint,))
    assert rules.first_match(RECORD, when=utc(2026, 1, 10, 2, 15)) is maint
    assert rules.first_match(RECORD, when=utc(2026, 1, 10, 4, 0)) is None
    assert rules.first_match(RECORD) is None  # no time known: the window cannot hold


# --- allow-lists ----------------------------------------------------------------------------


def ev(parent: str | None = None, exe: str | None = None, args: list[str] | None = None) -> dict[str, Any]:  # fmt: skip
    p: dict[str, Any] = {}
    if parent:
        p["name"] = parent
    if exe:
        p["executable"] = exe
    if args:
        p["args"] = args
    return {"process": {"name": "ss", "parent": p}}


def test_allow_list_needs_every_event_behind_the_anomaly_allowed() -> None:
    allow = AllowList(parents=("zabbix_agentd", "/usr/sbin/cron"),
                      scripts=("/opt/monitor/*.sh", "netcheck.py"))  # fmt: skip
    assert allow.allows(ev(parent="zabbix_agentd"))
    assert allow.allows(ev(exe="/usr/sbin/cron"))
    assert allow.allows(ev(parent="bash", args=["/bin/bash", "/opt/monitor/ports.sh"]))
    assert allow.allows(ev(parent="python3", args=["python3", "/srv/tools/netcheck.py"]))
    assert not allow.allows(ev(parent="bash", args=["-bash"]))
    assert not allow.allows(ev())

    only_allow = item(allow=allow)
    rules = ExceptionSet((only_allow,))
    good = [ev(parent="zabbix_agentd"), ev(parent="bash", args=["bash", "/opt/monitor/a.sh"])]
    mixed = [*good, ev(parent="bash", args=["-bash"])]
    assert rules.first_match(RECORD, events=lambda: good) is only_allow
    assert rules.first_match(RECORD, events=lambda: mixed) is None
    assert rules.first_match(RECORD, events=lambda: []) is None  # nothing kept: cannot hold
    assert rules.first_match(RECORD) is None


def test_events_are_fetched_only_when_an_allow_list_asks() -> None:
    calls: list[int] = []

    def provider() -> list[dict[str, Any]]:
        calls.append(1)
        return [ev(parent="cron")]

    plain = ExceptionSet((item(MatchEntry("user.name", "alice")),))
    assert plain.first_match(RECORD, events=provider) is not None
    assert calls == []
    two_allow_items = ExceptionSet(
        (item(allow=AllowList(("x",))), item(allow=AllowList(("cron",))))
    )
    assert two_allow_items.first_match(RECORD, events=provider) is not None
    assert calls == [1]  # fetched once, shared by both items


# --- the Elastic JSON form ------------------------------------------------------------------


def test_entries_from_elastic_json_and_validation() -> None:
    assert entry_from_elastic(
        {"field": "user.name", "operator": "included", "type": "match_any", "value": ["a", "b"]},
        "e",
    ) == MatchAnyEntry("user.name", ("a", "b"))
    assert entry_from_elastic(
        {"field": "user.name", "operator": "excluded", "type": "list",
         "list": {"id": "admins", "type": "keyword"}}, "e",
    ) == ListEntry("user.name", "admins", "keyword", "excluded")  # fmt: skip
    with pytest.raises(
        DefinitionError, match=r"e: entry 'operator' must be 'included' or 'excluded'"
    ):
        entry_from_elastic({"field": "a", "operator": "is", "type": "match", "value": "x"}, "e")
    with pytest.raises(DefinitionError, match="a match entry needs a non-empty string 'value'"):
        entry_from_elastic(
            {"field": "a", "operator": "included", "type": "match", "value": ""}, "e"
        )
    with pytest.raises(
        DefinitionError, match=r"e.entries\[0\]: entry type must be one of match, match_any, exists"
    ):
        entry_from_elastic(
            {"field": "a", "type": "nested",
             "entries": [{"field": "b", "operator": "included", "type": "wildcard", "value": "x"}]},
            "e",
        )  # fmt: skip


def test_entry_text_uses_kibana_operator_wording() -> None:
    assert parse_entry_text("user.name is alice") == MatchEntry("user.name", "alice")
    assert parse_entry_text("user.name is-not alice") == MatchEntry(
        "user.name", "alice", "excluded"
    )
    assert parse_entry_text("process.args does-not-exist") == ExistsEntry(
        "process.args", "excluded"
    )
    assert parse_entry_text("host.name matches web-*") == WildcardEntry("host.name", "web-*")
    assert parse_entry_text("user.name in-list admins") == ListEntry("user.name", "admins")
    with pytest.raises(ValueError, match="unknown operator 'equals'"):
        parse_entry_text("user.name equals alice")
    with pytest.raises(ValueError, match="'exists' takes no value"):
        parse_entry_text("user.name exists alice")
