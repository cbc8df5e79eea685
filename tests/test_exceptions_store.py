"""Exception lists in the store and Kibana's exception-list NDJSON: import, export, which lists a
rule applies, value lists, proposals from alerts."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from rarebird.definitions.rule import ExceptionListRef
from rarebird.errors import DefinitionError
from rarebird.rules.exception_items import new_item, propose_item, rule_default_list_id
from rarebird.rules.exceptions import (
    AllowList,
    ExceptionItem,
    MatchAnyEntry,
    MatchEntry,
    ScheduleWindow,
    ValueList,
    parse_exceptions_ndjson,
)
from rarebird.store.exceptions import (
    delete_item,
    delete_value_list,
    ensure_rule_default_list,
    export_exceptions,
    import_exceptions,
    list_ids_for_rule,
    load_items,
    load_rule_exceptions,
    load_value_lists,
    save_item,
    save_value_list,
)
from rarebird.store.sqlite import Store
from tests.rule_support import T0, make_store, rule

# What Kibana's "Export exception list" writes for a detection list with two items: the list,
# its items, and the export details (field set as Kibana 8.x/9.x writes them).
KIBANA_EXPORT = "\n".join(
    json.dumps(x)
    for x in [
        {
            "_version": "WzQsMV0=", "created_at": "2026-01-05T10:00:00.000Z",
            "created_by": "elastic", "description": "Known admins", "id": "0b1e9c7a-list",
            "immutable": False, "list_id": "linux-admins", "name": "Linux admins",
            "namespace_type": "single", "os_types": [], "tags": [],
            "tie_breaker_id": "6a1b0b7e-tie", "type": "detection",
            "updated_at": "2026-01-05T10:00:00.000Z", "updated_by": "elastic", "version": 1,
        },
        {
            "_version": "WzUsMV0=", "comments": [], "created_at": "2026-01-05T10:01:00.000Z",
            "created_by": "elastic", "description": "ops team", "entries": [
                {"field": "user.name", "operator": "included", "type": "match_any",
                 "value": ["ops1", "ops2"]},
                {"field": "host.name", "operator": "excluded", "type": "wildcard",
                 "value": "prod-db-*"},
            ],
            "id": "1c2d-item-so-id", "item_id": "ops-team", "list_id": "linux-admins",
            "name": "Ops team, not on databases", "namespace_type": "single", "os_types": [],
            "tags": [], "tie_breaker_id": "7b2c-tie", "type": "simple",
            "updated_at": "2026-01-05T10:01:00.000Z", "updated_by": "elastic",
            "expire_time": "2027-01-01T00:00:00.000Z",
        },
        {
            "comments": [{"comment": "from the SOC", "created_at": "2026-01-05T10:02:00.000Z",
                          "created_by": "elastic", "id": "c1"}],
            "created_at": "2026-01-05T10:02:00.000Z", "created_by": "elastic",
            "description": "", "entries": [
                {"field": "user.name", "operator": "included", "type": "list",
                 "list": {"id": "contractors.txt", "type": "keyword"}},
            ],
            "id": "2d3e-item-so-id", "item_id": "contractors", "list_id": "linux-admins",
            "name": "Contractors", "namespace_type": "single", "os_types": [], "tags": ["onboarding"],
            "type": "simple", "updated_at": "2026-01-05T10:02:00.000Z", "updated_by": "elastic",
        },
        {
            "exported_exception_list_count": 1, "exported_exception_list_item_count": 2,
            "missing_exception_list_item_count": 0, "missing_exception_list_items": [],
            "missing_exception_lists": [], "missing_exception_lists_count": 0,
        },
    ]
) + "\n"  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = make_store(tmp_path)
    yield s
    s.close()


def test_parse_kibana_export() -> None:
    parsed = parse_exceptions_ndjson(KIBANA_EXPORT, "export.ndjson")
    assert [x.list_id for x in parsed.lists] == ["linux-admins"]
    assert [i.item_id for i in parsed.items] == ["ops-team", "contractors"]
    ops = parsed.items[0]
    assert ops.entries[0] == MatchAnyEntry("user.name", ("ops1", "ops2"))
    assert ops.expire_time is not None
    assert ops.expire_time.isoformat() == "2027-01-01T00:00:00+00:00"
    assert ops.is_elastic_only


def test_import_then_export_round_trips_kibanas_fields(store: Store) -> None:
    summary = import_exceptions(store, parse_exceptions_ndjson(KIBANA_EXPORT), attach_rule_id=rule().rule_id)  # fmt: skip
    assert (summary.lists_created, summary.items_created, summary.errors) == (1, 2, ())
    out = [json.loads(x) for x in export_exceptions(store, ["linux-admins"]).splitlines()]
    original = [json.loads(x) for x in KIBANA_EXPORT.splitlines()]
    assert out[0] == original[0]
    # items come back with every key Kibana wrote (meta added empty, keys sorted)
    assert out[1] == {**original[1], "meta": {}}
    assert out[2] == {**original[2], "meta": {}}
    assert out[3] == original[3]


def test_import_keeps_existing_unless_overwrite(store: Store) -> None:
    parsed = parse_exceptions_ndjson(KIBANA_EXPORT)
    import_exceptions(store, parsed)
    again = import_exceptions(store, parsed)
    assert (again.lists_created, again.items_created, again.items_skipped) == (0, 0, 2)
    renamed = replace(parsed, items=(replace(parsed.items[0], name="renamed"),))
    over = import_exceptions(store, renamed, overwrite=True)
    assert (over.lists_updated, over.items_updated) == (1, 1)
    assert [i.name for i in load_items(store, ["linux-admins"])] == ["renamed", "Contractors"]


def test_import_reports_items_of_unknown_lists(store: Store) -> None:
    item_only = "\n".join(KIBANA_EXPORT.splitlines()[1:2])
    summary = import_exceptions(store, parse_exceptions_ndjson(item_only))
    assert summary.errors == ("item ops-team: exception list linux-admins not found",)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", r"x.ndjson: line 1: invalid JSON"),
        ('{"item_id": "a", "list_id": "l", "name": "n", "entries": [{"field": "f", "operator": '
         '"included", "type": "regex", "value": "x"}]}',
         r"line 1.entries\[0\]: entry type must be one of match, match_any, exists, wildcard, list, nested"),
        ('{"item_id": "a", "list_id": "l", "name": "n", "entries": []}',
         r"line 1.entries: an item needs at least one entry"),
        ('{"list_id": "l", "name": "n", "type": "blocklist"}',
         r"line 1.type: unknown exception list type 'blocklist'"),
        ('{"hello": 1}', r"line 1: neither an exception list nor an item"),
    ],
)  # fmt: skip
def test_import_errors_name_the_line(line: str, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        parse_exceptions_ndjson(line + "\n", "x.ndjson")


def test_rarebird_conditions_travel_in_meta(store: Store) -> None:
    r = rule()
    list_id = ensure_rule_default_list(store, r, T0)
    item = new_item(
        list_id=list_id, name="maintenance", entries=[MatchEntry("host.name", "web-1")],
        windows=[ScheduleWindow.parse("Sun 01:00-05:00 Europe/Berlin")],
        allow=AllowList(("ansible-playbook",), ("/opt/checks/*.sh",)), now=T0, item_id="m1",
    )  # fmt: skip
    save_item(store, item)
    doc = json.loads(export_exceptions(store, [list_id]).splitlines()[1])
    assert doc["meta"] == {
        "rarebird": {
            "windows": [{"days": ["sun"], "start": "01:00", "end": "05:00",
                         "time_zone": "Europe/Berlin"}],
            "allow": {"parents": ["ansible-playbook"], "scripts": ["/opt/checks/*.sh"]},
        }
    }  # fmt: skip
    back = ExceptionItem.from_elastic(doc)
    assert back.windows == item.windows
    assert back.allow == item.allow
    assert not back.is_elastic_only


def test_which_lists_a_rule_applies(store: Store) -> None:
    r = replace(rule(), exceptions_list=(ExceptionListRef("x", "from-the-toml"),))
    import_exceptions(store, parse_exceptions_ndjson(KIBANA_EXPORT), attach_rule_id=r.rule_id)
    assert list_ids_for_rule(store, r) == [
        "from-the-toml", "linux-admins", rule_default_list_id(r.rule_id),
    ]  # fmt: skip
    other_rule = replace(r, rule_id="other", exceptions_list=())
    assert list_ids_for_rule(store, other_rule) == ["rule_default_other"]
    assert [i.item_id for i in load_rule_exceptions(store, r).items] == ["ops-team", "contractors"]
    assert load_rule_exceptions(store, other_rule).items == ()


def test_value_lists_persist_and_feed_list_entries(store: Store) -> None:
    save_value_list(store, ValueList("contractors.txt", "keyword", frozenset({"c1", "c2"})), T0)
    save_value_list(store, ValueList("contractors.txt", "keyword", frozenset({"c3"})), T0,
                    replace_values=False)  # fmt: skip
    lists = load_value_lists(store)
    assert lists["contractors.txt"].values == frozenset({"c1", "c2", "c3"})
    import_exceptions(store, parse_exceptions_ndjson(KIBANA_EXPORT), attach_rule_id=rule().rule_id)
    exc = load_rule_exceptions(store, rule())
    hit = exc.first_match({"user.name": ["c3"], "host.name": ["web-1"]})
    assert hit is not None
    assert hit.item_id == "contractors"
    assert delete_value_list(store, "contractors.txt")
    missing: set[str] = set()
    gone = load_rule_exceptions(store, rule())
    assert gone.first_match({"user.name": ["c3"]}, missing_lists=missing) is None
    assert missing == {"contractors.txt"}


def test_delete_by_item_id_or_id(store: Store) -> None:
    import_exceptions(store, parse_exceptions_ndjson(KIBANA_EXPORT))
    removed = delete_item(store, "2d3e-item-so-id")
    assert removed is not None
    assert removed.item_id == "contractors"
    assert delete_item(store, "contractors") is None
    assert [i.item_id for i in load_items(store)] == ["ops-team"]


def test_proposal_from_an_alert() -> None:
    alert_doc = {
        "kibana.alert.uuid": "abc123",
        "user": {"name": ["mallory"]},
        "host": {"name": ["web-2", "web-1"]},
        "process": {"name": ["ss"]},
    }
    item = propose_item(alert_doc, list_id="l", now=T0, parents=["/usr/sbin/cron"])
    assert item.entries == (MatchEntry("user.name", "mallory"),
                            MatchAnyEntry("host.name", ("web-1", "web-2")))  # fmt: skip
    assert item.allow == AllowList(("/usr/sbin/cron",))
    assert item.name == "Exception for user.name=mallory, host.name=web-1|web-2"
    assert item.description == "Proposed from alert abc123"
    with pytest.raises(ValueError, match="the alert has none of the fields no.such"):
        propose_item(alert_doc, list_id="l", now=T0, fields=["no.such"])
