"""``serve`` following an index pattern as Elastic's real-time datafeed does, against a stand-in
Elasticsearch on loopback (``tests/es_fake.py``: documented response shapes replayed, never a
live cluster): the same records as ``detect`` over the same documents, the position committed
with everything else (a restart searches on from it, nothing twice), and the delayed-data check.
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
from rarebird.store.results import search_results
from tests.es_fake import FakeElasticsearch, _ms
from tests.serve_support import SPAN, Recorder, event, history, turn, write_definitions, write_lines

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def records(store_path: Path) -> list[tuple[Any, ...]]:
    with open_store(str(store_path), create=False) as store:
        hits = search_results(store, "record", order="time").hits
    return sorted((d["timestamp"], d["by_field_value"], round(d["probability"], 12),
                   round(d["record_score"], 6)) for _, d in hits)  # fmt: skip


def scenario() -> list[dict[str, Any]]:
    docs = history(T0, 240)
    docs.append(event(T0 - timedelta(seconds=61), "mallory", host="web-2"))
    docs.sort(key=lambda d: str(d["@timestamp"]))
    return docs


@pytest.fixture
def es(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("RAREBIRD_ES_API_KEY", "cmVhZGVyOmtleQ==")
    with FakeElasticsearch() as server:
        yield server


def service_for(
    tmp_path: Path, es: FakeElasticsearch, clock: FixedClock
) -> tuple[Service, Recorder]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    defs = write_definitions(tmp_path / "defs")
    config = ServeConfig(
        store=str(tmp_path / "serve.db"), job=str(defs.job), datafeed=str(defs.datafeed),
        rule=str(defs.rule), follow=(FollowConfig(path=es.spec("logs-*"), name="fleet"),),
        backfill=BackfillConfig(max_age=timedelta(hours=1), alerts=True),
    )  # fmt: skip
    log = Recorder()
    service = Service(config, clock=clock, log=log)
    service.open()
    return service, log


def test_serve_models_an_index_as_detect_models_the_same_documents(
    es: FakeElasticsearch, tmp_path: Path
) -> None:
    docs = scenario()
    es.cluster.events = list(docs)
    defs = write_definitions(tmp_path / "defs")
    data = tmp_path / "events.ndjson"
    write_lines(data, docs, "w")
    out = CliRunner().invoke(main, ["detect", "--store", str(tmp_path / "detect.db"), "--quiet",
                                    *defs.flags(), "--format", "json", str(data)])  # fmt: skip
    assert out.exit_code == 0, out.output

    clock = FixedClock(T0 + timedelta(seconds=2 * SPAN))
    service, log = service_for(tmp_path, es, clock)
    while service.run_once():
        pass
    turn(service, clock, seconds=60)
    service.close()
    modelled = records(tmp_path / "detect.db")
    assert modelled, "the scenario makes anomaly records"
    assert records(tmp_path / "serve.db") == modelled
    assert es.cluster.pits_open == set()
    # the position is committed with the results: the end searched, now - query_delay
    with open_store(str(tmp_path / "serve.db"), create=False) as store:
        from rarebird.store.serve import load_service_state

        state = json.loads(load_service_state(store, "fast_discovery") or "{}")
    position = state["sources"]["fleet"]
    assert (position["kind"], position["version"]) == ("elasticsearch", 1)
    assert position["end_ms"] == _ms((T0 + timedelta(seconds=2 * SPAN + 60 - 1)).isoformat())


def test_a_restart_searches_on_from_the_committed_end_and_nothing_twice(
    es: FakeElasticsearch, tmp_path: Path
) -> None:
    es.cluster.events = scenario()
    later = T0 + timedelta(seconds=2 * SPAN + 30)
    es.cluster.events.append(event(later - timedelta(seconds=5), "monitor"))

    def seen(service: Service) -> int:
        assert service.engine is not None
        return service.engine.job.stats.processed_record_count + service.engine.pending_count

    # uninterrupted, to `later`
    clock = FixedClock(T0 + timedelta(seconds=2 * SPAN))
    whole, _ = service_for(tmp_path / "whole", es, clock)
    turn(whole, clock, seconds=30)
    expected = seen(whole)
    whole.close()
    # stopped on the way and started again
    es.cluster.requests.clear()
    clock = FixedClock(T0 + timedelta(seconds=2 * SPAN))
    first, _ = service_for(tmp_path / "split", es, clock)
    turn(first, clock)
    first.close()
    end_before = max(_ranges(es)[i]["lt"] for i in range(len(_ranges(es))))
    es.cluster.requests.clear()
    clock.advance(timedelta(seconds=30))
    again, _ = service_for(tmp_path / "split", es, clock)
    turn(again, clock)
    assert min(r["gte"] for r in _ranges(es)) == end_before  # on from the committed end
    assert seen(again) == expected  # every document once: none lost, none twice
    again.close()


def _ranges(es: FakeElasticsearch) -> list[dict[str, Any]]:
    return [r.json()["query"]["bool"]["filter"][1]["range"]["@timestamp"]
            for r in es.cluster.requests if r.body and "query" in r.json()]  # fmt: skip


def test_documents_that_arrive_after_their_time_was_searched_are_reported(
    es: FakeElasticsearch, tmp_path: Path
) -> None:
    es.cluster.events = scenario()
    clock = FixedClock(T0 + timedelta(seconds=2 * SPAN))
    service, log = service_for(tmp_path, es, clock)
    while service.run_once():
        pass
    # two documents indexed late, into a bucket the datafeed has already searched
    late = T0 - timedelta(seconds=3 * SPAN)
    es.cluster.events += [event(late, "backup"), event(late + timedelta(seconds=1), "backup")]
    turn(service, clock, seconds=901)  # the check runs every 15 minutes
    service.close()
    (report,) = log.events("delayed_data")
    bucket = late - timedelta(seconds=late.timestamp() % SPAN)
    stamp = bucket.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert report["missed"] == 2
    assert report["message"] == (
        f"Datafeed has missed 2 documents due to ingest latency, latest bucket with missing "
        f"data is [{stamp}]. Consider increasing query_delay"
    )
    hist = [r.json() for r in es.cluster.requests if r.body and "date_histogram" in r.body.decode()]
    assert hist[-1]["aggs"] == {"buckets": {"date_histogram": {"field": "@timestamp",
                                                               "fixed_interval": "5s"}}}  # fmt: skip
