"""The Elasticsearch source (``es+https://HOST:9200/INDEX-PATTERN``) for ``job run`` and
``detect``: the datafeed's own searches, sent through the official client to a stand-in
Elasticsearch on loopback (``tests/es_fake.py``: answers shaped as Elasticsearch's REST API
documentation shows them, replayed -- never a live cluster)."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from rarebird.cli import main
from rarebird.definitions import load_datafeed, load_job
from rarebird.definitions.datafeed import datafeed_from_dict
from rarebird.errors import InputError
from rarebird.run.elastic_inputs import search_plan
from rarebird.run.replay import InputOptions
from rarebird.sources.elasticsearch import DataSummary, ElasticsearchSource, SearchPlan
from rarebird.sources.es_client import parse_target
from rarebird.store import open_store
from rarebird.store.results import search_results
from tests.es_fake import FakeElasticsearch, _ms
from tests.rule_support import scenario_events, write_ndjson

API_KEY = base64.b64encode(b"reader-id:reader-key").decode()
RANGE = "start=2026-03-01T00:00:00Z&end=2026-03-05T00:00:00Z"
FIELDS = [
    "@timestamp", "event.type", "host.name", "host.os.family", "host.os.type",
    "process.args", "process.name", "user.name",
]  # fmt: skip


@pytest.fixture
def es(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("RAREBIRD_ES_API_KEY", API_KEY)
    with FakeElasticsearch() as server:
        server.cluster.authorization = f"ApiKey {API_KEY}"
        server.cluster.events = scenario_events()
        yield server


def records(store_path: Path) -> list[tuple[str, str, float, float]]:
    with open_store(str(store_path), create=False) as store:
        hits = search_results(store, "record", order="time").hits
    return [(d["timestamp"], d["by_field_value"], round(d["probability"], 12),
             round(d["record_score"], 6)) for _, d in hits]  # fmt: skip


def test_job_run_over_an_index_models_what_it_models_from_the_same_documents_in_a_file(
    es: FakeElasticsearch, tmp_path: Path
) -> None:
    events = write_ndjson(tmp_path / "events.ndjson", es.cluster.events)
    runner = CliRunner()
    from_file = runner.invoke(main, ["job", "run", "--store", str(tmp_path / "f.db"), str(events)])
    spec = es.spec("logs-endpoint.events.process-*", query=RANGE)
    from_es = runner.invoke(main, ["job", "run", "--store", str(tmp_path / "e.db"), spec])
    assert from_file.exit_code == 0, from_file.output
    assert from_es.exit_code == 0, from_es.output
    modelled = records(tmp_path / "f.db")
    assert modelled, "the scenario makes anomaly records"
    assert records(tmp_path / "e.db") == modelled
    assert es.cluster.pits_open == set()  # every point in time closed


def test_the_searches_are_the_datafeeds(es: FakeElasticsearch) -> None:
    job, datafeed = load_job(), load_datafeed()
    raw = {**datafeed.raw, "scroll_size": 100, "chunking_config": {"mode": "manual",
                                                                   "time_span": "1d"}}  # fmt: skip
    feed = datafeed_from_dict(raw)
    options = InputOptions().source_options(job, feed)
    plan = search_plan(job, feed, options)
    source = ElasticsearchSource(parse_target(es.spec("logs-*", query=RANGE)), plan, options)
    events = list(source)
    assert len(events) == len(es.cluster.events) == source.stats.events
    reqs = es.cluster.requests
    query = raw["query"]
    first_range = {"gte": 1772323200000, "lt": 1772668800000, "format": "epoch_millis"}
    assert (reqs[0].method, reqs[0].path) == ("POST", "/logs-*/_search")
    assert reqs[0].json() == {
        "size": 0, "track_total_hits": True,
        "query": {"bool": {"filter": [query, {"range": {"@timestamp": first_range}}]}},
        "aggs": {"earliest_time": {"min": {"field": "@timestamp"}},
                 "latest_time": {"max": {"field": "@timestamp"}}},
    }  # fmt: skip
    assert (reqs[1].method, reqs[1].path, reqs[1].query) == ("POST", "/logs-*/_pit",
                                                             {"keep_alive": "1m"})  # fmt: skip
    page1, page2 = reqs[2].json(), reqs[3].json()
    earliest = 1772323210000  # the first document; the chunk starts there, a day long
    chunk = {"gte": earliest, "lt": earliest + 86_400_000, "format": "epoch_millis"}
    assert page1 == {
        "size": 100, "track_total_hits": False,
        "query": {"bool": {"filter": [query, {"range": {"@timestamp": chunk}}]}},
        "sort": [{"@timestamp": {"order": "asc"}}, {"_shard_doc": "asc"}],
        "pit": {"id": "pit-1", "keep_alive": "1m"},
        "_source": FIELDS,
    }  # fmt: skip
    assert reqs[2].path == "/_search"  # a search under a point in time names no index
    in_order = sorted((_ms(e["@timestamp"]), i) for i, e in enumerate(es.cluster.events))
    assert page2["search_after"] == list(in_order[99])  # the 100th hit's sort values
    assert (reqs[4].method, reqs[4].path, reqs[4].json()) == ("DELETE", "/_pit", {"id": "pit-1"})
    assert {r.headers["authorization"] for r in reqs} == {f"ApiKey {API_KEY}"}
    assert es.cluster.pits_open == set()


def test_elastics_auto_chunk() -> None:
    # 10 pages of scroll_size documents per chunk, if spread evenly; at least a minute
    assert DataSummary(5000, 0, 3_600_000).estimate_chunk_ms(1000, 10**9) == 7_200_000
    assert DataSummary(10**9, 0, 3_600_000).estimate_chunk_ms(1000, 10**9) == 60_000
    assert DataSummary(1, 5, 5).estimate_chunk_ms(1000, 42) == 42


def test_a_failed_shard_is_an_error_not_partial_data(es: FakeElasticsearch) -> None:
    es.cluster.shard_failure = True  # the next page of hits reports a failed shard
    plan = SearchPlan(query={"match_all": {}}, chunking="off")
    source = ElasticsearchSource(parse_target(es.spec("logs-*", query=RANGE)), plan)
    with pytest.raises(InputError) as err:
        list(source)
    assert str(err.value) == (
        f"{es.spec('logs-*')}: search [2026-03-01T00:00:10.000Z, 2026-03-05T00:00:00.000Z): "
        "1 of 2 shards failed (logs-endpoint.events.process-default[1]: "
        "node_not_connected_exception: [n1] Node not connected)"
    )
    assert source.stats.events == 0
    assert es.cluster.pits_open == set()  # closed all the same


def test_missing_index_and_missing_privileges_are_clear_errors(es: FakeElasticsearch) -> None:
    es.cluster.missing.add("nope")
    plan = SearchPlan(query={"match_all": {}})
    with pytest.raises(InputError, match=r"data summary .*: HTTP 404: index_not_found_exception: "
                       r"no such index \[nope\]"):  # fmt: skip
        list(ElasticsearchSource(parse_target(es.spec("nope", query=RANGE)), plan))
    wrong = parse_target(es.spec("logs-*", query=RANGE), {"RAREBIRD_ES_API_KEY": "d3Jvbmc="})
    with pytest.raises(InputError, match="HTTP 403: security_exception: action "
                       r"\[indices:data/read/search\] is unauthorized"):  # fmt: skip
        list(ElasticsearchSource(wrong, plan))


def test_dry_run_prints_the_searches_and_sends_nothing(es: FakeElasticsearch) -> None:
    out = io.StringIO()
    plan = SearchPlan(query={"term": {"event.type": "start"}}, fields=("@timestamp", "user.name"))
    target = parse_target(es.spec("logs-*", query=RANGE + "&dry_run=true"))
    assert list(ElasticsearchSource(target, plan, dry_run_out=out)) == []
    assert es.cluster.requests == []
    lines = out.getvalue().splitlines()
    assert lines[0] == (f"rarebird: dry run: http://127.0.0.1:{es.port}/logs-* "
                        "[2026-03-01T00:00:00.000Z, 2026-03-05T00:00:00.000Z) (not sent)")  # fmt: skip
    assert lines[2] == "POST /logs-*/_pit?keep_alive=1m"
    page = json.loads(lines[3].removeprefix("POST /_search "))
    assert page["_source"] == ["@timestamp", "user.name"]
    assert page["size"] == 1000


def test_detect_reads_an_index_and_a_file_together(es: FakeElasticsearch, tmp_path: Path) -> None:
    events = es.cluster.events
    half = len(events) // 2
    es.cluster.events = events[:half]
    rest = write_ndjson(tmp_path / "rest.ndjson", events[half:])
    spec = es.spec("logs-*", query=RANGE)
    res = CliRunner().invoke(main, ["detect", "--store", str(tmp_path / "d.db"), "--format",
                                    "ndjson", "-q", spec, str(rest)])  # fmt: skip
    assert res.exit_code == 0, res.output
    whole = write_ndjson(tmp_path / "all.ndjson", events)
    ref = CliRunner().invoke(main, ["detect", "--store", str(tmp_path / "r.db"), "--format",
                                    "ndjson", "-q", str(whole)])  # fmt: skip
    assert [json.loads(x)["kibana.alert.uuid"] for x in res.stdout.splitlines()] == [
        json.loads(x)["kibana.alert.uuid"] for x in ref.stdout.splitlines()
    ]
    assert res.stdout  # the scenario's new user is alerted
