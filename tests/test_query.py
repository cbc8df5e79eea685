"""The datafeed query DSL: Elasticsearch semantics on one event, and the derived prefilter."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rarebird.datafeed.dsl import minimum_should_match
from rarebird.datafeed.query import compile_query
from rarebird.datafeed.wildcard import wildcard_regex
from rarebird.definitions.datafeed import load_datafeed
from rarebird.errors import QueryError
from rarebird.events import ProcessEvent
from rarebird.sources import FieldCondition

T0 = datetime(2026, 1, 5, 10, tzinfo=UTC)


def ev(**kw: Any) -> ProcessEvent:
    extra = kw.pop("extra", {})
    kw.setdefault("timestamp", T0)
    return ProcessEvent(extra=extra, **kw)


SS = ev(
    process_name="ss",
    process_args=("ss", "-tunap"),
    event_type=("start",),
    user_name="alice",
    host_os_type="linux",
    host_os_family="debian",
    process_pid=42,
    extra={"process.args_count": ("2",), "message": ("Process ss started by alice",)},
)


def matches(query: dict[str, Any], event: ProcessEvent = SS) -> bool:
    return compile_query(query).matches(event)


# --- leaf queries ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"term": {"process.name": "ss"}}, True),
        ({"term": {"process.name": "SS"}}, False),
        ({"term": {"process.name": {"value": "SS", "case_insensitive": True}}}, True),
        ({"term": {"process.name": {"value": "ss", "boost": 2.0}}}, True),
        ({"term": {"process.args": "-tunap"}}, True),  # any element of an array
        ({"term": {"process.args": "ss -tunap"}}, False),
        ({"terms": {"process.name": ["netstat", "ss"]}}, True),
        ({"terms": {"process.name": []}}, False),
        ({"match": {"process.name": "ss"}}, True),
        ({"match": {"process.name": {"query": "ss tunap", "operator": "AND"}}}, False),
        ({"match_phrase": {"process.name": "ss"}}, True),
        ({"term": {"user.name": "bob"}}, False),
        ({"term": {"process.title": "ss"}}, False),  # missing field
        ({"term": {"process.pid": 42}}, True),
        ({"term": {"process.pid": "42.0"}}, True),  # a long field compares as a number
        ({"term": {"process.args_count": 2.0}}, True),
        ({"term": {"user.name": "alice "}}, False),
        ({"match_all": {}}, True),
        ({"match_none": {}}, False),
    ],
)
def test_term_terms_match_on_keyword_fields(query: dict[str, Any], expected: bool) -> None:
    assert matches(query) is expected


def test_keyword_fields_compare_as_strings_not_numbers() -> None:
    one = ev(process_name="1", user_id="1000")
    assert not matches({"term": {"process.name": "1.0"}}, one)
    assert not matches({"term": {"user.id": "1e3"}}, one)
    assert matches({"term": {"user.id": 1000}}, one)
    assert not matches({"term": {"process.pid": "4_2"}})


def test_match_on_text_fields_is_analysed() -> None:
    assert matches({"match": {"message": "SS started"}})
    assert matches({"match": {"message": {"query": "ss bob", "operator": "or"}}})
    assert not matches({"match": {"message": {"query": "ss bob", "operator": "and"}}})
    assert matches({"match_phrase": {"message": "started by alice"}})
    assert not matches({"match_phrase": {"message": "alice by"}})
    assert not matches({"match": {"message": "!!!"}})


def test_exists_on_leaf_and_object_fields() -> None:
    assert matches({"exists": {"field": "process.name"}})
    assert matches({"exists": {"field": "host.os"}})  # an object: any field under it
    assert matches({"exists": {"field": "process"}})
    assert matches({"exists": {"field": "@timestamp"}})
    assert not matches({"exists": {"field": "process.title"}})
    assert not matches({"exists": {"field": "process.na"}})
    assert not matches({"exists": {"field": "user.name"}}, ev(user_id="0"))


def test_wildcard_and_prefix() -> None:
    assert matches({"wildcard": {"process.name": "s?"}})
    assert matches({"wildcard": {"process.args": {"value": "-TUN*", "case_insensitive": True}}})
    assert not matches({"wildcard": {"process.name": "s"}})
    assert matches({"prefix": {"user.name": "ali"}})
    assert matches({"prefix": {"user.name": {"value": "ALI", "case_insensitive": True}}})
    assert not matches({"prefix": {"user.name": "lic"}})
    assert bool(wildcard_regex(r"a\*b").fullmatch("a*b"))
    assert not wildcard_regex(r"a\*b").fullmatch("axb")


def test_range_numbers_strings_and_dates() -> None:
    assert matches({"range": {"process.pid": {"gte": 42, "lt": 43}}})
    assert not matches({"range": {"process.pid": {"gt": 42}}})
    assert matches({"range": {"user.name": {"gte": "a", "lt": "b"}}})
    assert matches(
        {"range": {"@timestamp": {"gte": "2026-01-05T10:00:00Z", "lt": "2026-01-05T11:00:00Z"}}}
    )
    assert not matches({"range": {"@timestamp": {"gt": "2026-01-05T10:00:00Z"}}})
    assert matches({"range": {"@timestamp": {"gte": 1767607200000}}})
    assert matches({"range": {"@timestamp": {"gte": 1767607200, "format": "epoch_second"}}})
    assert not matches({"range": {"@timestamp": {"gt": 1767607200, "format": "epoch_second"}}})
    assert matches(
        {"range": {"@timestamp": {"from": "2026-01-05T10:00:00Z", "include_lower": True}}}
    )
    assert not matches(
        {"range": {"@timestamp": {"from": "2026-01-05T10:00:00Z", "include_lower": False}}}
    )
    created = ev(extra={"event.created": ("2026-01-05T09:00:00+01:00",)})
    assert matches(
        {"range": {"event.created": {"gte": "2026-01-05T08:00:00Z", "lt": "2026-01-05T08:00:01Z"}}},
        created,
    )
    with pytest.raises(QueryError, match="relative dates"):
        compile_query({"range": {"@timestamp": {"gte": "now-15m"}}})
    with pytest.raises(QueryError, match="unsupported range options"):
        compile_query({"range": {"process.pid": {"gte": 1, "bogus": 2}}})


# --- bool -----------------------------------------------------------------------------------------


def test_bool_clauses_and_minimum_should_match() -> None:
    name_ss = {"term": {"process.name": "ss"}}
    user_bob = {"term": {"user.name": "bob"}}
    linux = {"term": {"host.os.type": "linux"}}
    assert matches({"bool": {"must": [name_ss, linux]}})
    assert not matches({"bool": {"filter": [name_ss, user_bob]}})
    assert not matches({"bool": {"must_not": name_ss}})
    assert matches({"bool": {"must_not": [{"term": {"process.title": "x"}}]}})  # missing field
    assert matches({"bool": {"should": [user_bob, name_ss]}})
    assert not matches({"bool": {"should": [user_bob]}})
    assert matches({"bool": {"must": name_ss, "should": [user_bob]}})  # should optional
    assert not matches({"bool": {"must": name_ss, "should": [user_bob], "minimum_should_match": 1}})
    assert not matches({"bool": {"should": [user_bob], "must_not": [user_bob]}})  # should needed
    assert matches({"bool": {"should": [name_ss, linux, user_bob], "minimum_should_match": 2}})
    assert not matches(
        {"bool": {"should": [name_ss, user_bob, user_bob], "minimum_should_match": "67%"}}
    )
    assert matches({"bool": {}})


def test_should_of_terms_grouped_keeps_semantics() -> None:
    should = [
        {"term": {"process.name": "netstat"}},
        {"match": {"host.os.family": {"query": "redhat", "operator": "OR"}}},
        {"terms": {"process.name": ["route", "ss"]}},
        {"term": {"process.name": {"value": "SS", "case_insensitive": True}}},
    ]
    assert matches({"bool": {"should": should}})
    assert matches({"bool": {"should": should[1:2] + should[3:]}})
    assert not matches({"bool": {"should": should[:2]}})
    assert matches({"bool": {"should": should, "minimum_should_match": 2}})
    assert not matches({"bool": {"should": should[:3], "minimum_should_match": 2}})


@pytest.mark.parametrize(
    ("spec", "n", "expected"),
    [
        (1, 4, 1),
        (-1, 4, 3),
        ("75%", 4, 3),
        ("-25%", 4, 3),
        ("50%", 3, 1),
        (9, 4, 4),
        ("2", 4, 2),
        (0, 0, 0),
    ],
)
def test_minimum_should_match_forms(spec: Any, n: int, expected: int) -> None:
    assert minimum_should_match(spec, n, "q") == expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"script": {"source": "true"}}, "not supported"),
        ({"terms": {"user.name": {"index": "users", "id": "1", "path": "names"}}}, "terms lookup"),
        ({"bool": {"must": [], "filtr": []}}, "unknown keys"),
        ({"match": {"process.name": {"query": "ss", "fuzziness": "AUTO"}}}, "fuzziness"),
        ({"term": {"a": 1, "b": 2}}, "exactly one field"),
        ({"term": {"a": {"x": 1}}}, "value"),
        ({"term": {"process.name": None}}, "string, number or boolean"),
        ({"bool": {"should": [], "minimum_should_match": "1<2"}}, "combinations"),
        ({}, None),
    ],
)
def test_unsupported_or_malformed_queries_fail_clearly(
    query: dict[str, Any], message: str | None
) -> None:
    if message is None:
        assert compile_query(query).matches(SS)
        return
    with pytest.raises(QueryError, match=message):
        compile_query(query)


def test_the_packaged_datafeeds() -> None:
    feed = load_datafeed().query
    assert feed.matches(SS)
    assert not feed.matches(ev(process_name="ss", event_type=("end",), host_os_type="linux"))
    assert not feed.matches(ev(process_name="sshd", event_type=("start",), host_os_type="linux"))
    assert feed.matches(ev(process_name="route", event_type=("start",), host_os_family="redhat"))
    assert not feed.matches(ev(process_name="route", event_type=("start",), host_os_type="windows"))
    assert set(feed.prefilter.conditions) == {
        FieldCondition("event.type", frozenset({"start"})),
        FieldCondition("process.name", frozenset({"netstat", "ss", "route", "showmount"})),
    }
    assert feed.fields == frozenset(
        {"event.type", "host.os.type", "host.os.family", "process.name"}
    )


# --- prefilter derivation -------------------------------------------------------------------------


def conditions(query: dict[str, Any]) -> set[tuple[str, frozenset[str]]]:
    return {(c.field, c.values) for c in compile_query(query).prefilter.conditions}


def test_prefilter_conditions() -> None:
    assert conditions({"term": {"process.name": "ss"}}) == {("process.name", frozenset({"ss"}))}
    assert (
        conditions({"term": {"process.name": {"value": "ss", "case_insensitive": True}}}) == set()
    )
    assert conditions({"term": {"process.pid": 42}}) == set()  # compared as a number
    assert conditions({"match": {"message": "ss"}}) == set()
    assert conditions({"bool": {"must_not": {"term": {"process.name": "ss"}}}}) == set()
    assert conditions(
        {
            "bool": {
                "should": [
                    {"term": {"a": "1"}},
                    {"bool": {"filter": [{"term": {"a": "2"}}, {"term": {"b": "x"}}]}},
                ]
            }
        }
    ) == {("a", frozenset({"1", "2"}))}
    assert conditions(
        {"bool": {"must": {"term": {"a": "x"}}, "should": [{"term": {"b": "y"}}]}}
    ) == {("a", frozenset({"x"}))}
    assert conditions({"bool": {"should": [{"term": {"a": "1"}}, {"term": {"b": "2"}}]}}) == set()
    assert compile_query(None).prefilter.conditions == ()


FIELDS = ["process.name", "user.name", "event.type", "host.os.type", "process.pid"]
VALUES = ["ss", "netstat", "alice", "start", "linux", "42", "x"]


def leaf() -> st.SearchStrategy[dict[str, Any]]:
    field = st.sampled_from(FIELDS)
    value = st.sampled_from(VALUES)
    return st.one_of(
        st.builds(lambda f, v: {"term": {f: v}}, field, value),
        st.builds(lambda f, vs: {"terms": {f: vs}}, field, st.lists(value, max_size=3)),
        st.builds(lambda f, v: {"match": {f: {"query": v, "operator": "OR"}}}, field, value),
        st.builds(lambda f: {"exists": {"field": f}}, field),
        st.builds(
            lambda f, v: {"term": {f: {"value": v.upper(), "case_insensitive": True}}}, field, value
        ),
    )


queries = st.recursive(
    leaf(),
    lambda inner: st.builds(
        lambda must, should, must_not, msm: {
            "bool": {"must": must, "should": should, "must_not": must_not}
            | ({"minimum_should_match": msm} if msm is not None else {})
        },
        st.lists(inner, max_size=2),
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=1),
        st.one_of(st.none(), st.integers(0, 2)),
    ),
    max_leaves=8,
)
events = st.builds(
    lambda name, user, etype, os, pid: ev(
        process_name=name, user_name=user, event_type=etype, host_os_type=os, process_pid=pid
    ),
    st.one_of(st.none(), st.sampled_from(VALUES)),
    st.one_of(st.none(), st.sampled_from(VALUES)),
    st.lists(st.sampled_from(VALUES), max_size=2).map(tuple),
    st.one_of(st.none(), st.sampled_from(VALUES)),
    st.one_of(st.none(), st.just(42)),
)


@settings(max_examples=400, deadline=None)
@given(queries, events)
def test_prefilter_conditions_are_necessary(query: dict[str, Any], event: ProcessEvent) -> None:
    compiled = compile_query(query)
    if compiled.matches(event):
        for cond in compiled.prefilter.conditions:
            assert set(event.get(cond.field)) & cond.values, (cond, event)
