"""The ``elasticsearch`` alert output, through the official client, against a stand-in
Elasticsearch on loopback (``tests/es_fake.py``: response shapes from Elasticsearch's REST API
documentation, replayed -- never a live cluster)."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pytest

from rarebird.alerts import Alert, RuleIdentity, build_alert
from rarebird.sinks import ElasticsearchSink, SinkError, open_sink
from rarebird.sources.es_client import ElasticError, parse_target
from rarebird.testing.sinks import check_sink
from tests.es_fake import FakeCluster, FakeElasticsearch, make_tls
from tests.rule_support import at, record, rule

ALIAS = ".alerts-security.alerts-default"
BACKING = ".internal.alerts-security.alerts-default-000001"
API_KEY = base64.b64encode(b"VuaCfGcBCdbkQm-e5aOx:ui2lp2axTNmsyakw9tvNnw").decode()
ENV = {"RAREBIRD_ES_API_KEY": API_KEY}


def alerts(n: int, *, space: str = "default") -> list[Alert]:
    r = rule()
    ident = RuleIdentity.for_rule(r, space_id=space)
    out = []
    for i in range(n):
        rec = record(at(0), f"user{i}", 50 + i)
        out.append(build_alert(rec, rec.doc_id, r, ident, at(15)))
    return out


def suppressed(alert: Alert, count: int) -> Alert:
    doc = dict(alert.doc)
    doc["kibana.alert.suppression.docs_count"] = count
    doc["kibana.alert.last_detected"] = "2026-03-02T12:45:00.000Z"
    return Alert(alert.id, doc, alert.revision + 1)


def sink_for(es: FakeElasticsearch, query: str = "", **kw: Any) -> ElasticsearchSink:
    return ElasticsearchSink(parse_target(es.spec(query=query), ENV), initial_backoff=0.01, **kw)


@pytest.fixture
def es() -> Any:
    with FakeElasticsearch() as server:
        server.cluster.add_alias(ALIAS, BACKING)
        server.cluster.authorization = f"ApiKey {API_KEY}"
        yield server


def bulk_lines(cluster: FakeCluster) -> list[list[Any]]:
    return [r.ndjson() for r in cluster.requests_to("/_bulk")]


def test_new_alerts_are_created_through_the_alias_and_changes_are_partial_updates(
    es: FakeElasticsearch,
) -> None:
    a, b = alerts(2)
    sink = sink_for(es)
    sink.write([a, b])
    # an analyst acknowledges the alert in Kibana meanwhile
    es.cluster.indices[BACKING][a.id]["kibana.alert.workflow_status"] = "acknowledged"
    sink.write([suppressed(a, 3)])
    sink.close()

    first, second = bulk_lines(es.cluster)
    assert first == [
        {"create": {"_index": ALIAS, "_id": a.id, "require_alias": True}}, a.doc,
        {"create": {"_index": ALIAS, "_id": b.id, "require_alias": True}}, b.doc,
    ]  # fmt: skip
    assert [r.query for r in es.cluster.requests_to("/_bulk")][0] == {"require_alias": "true"}
    # the update goes to the concrete index the create landed in, with only what changed
    assert second == [
        {"update": {"_index": BACKING, "_id": a.id, "require_alias": False}},
        {"doc": {"kibana.alert.last_detected": "2026-03-02T12:45:00.000Z",
                 "kibana.alert.suppression.docs_count": 3}},
    ]  # fmt: skip
    stored = es.cluster.doc(a.id)
    assert stored["kibana.alert.workflow_status"] == "acknowledged"  # the analyst's, kept
    assert stored["kibana.alert.suppression.docs_count"] == 3
    assert (sink.created, sink.updated, sink.existing) == (2, 1, 0)
    # every request carried the API key, from the environment, never the command line
    assert {r.headers["authorization"] for r in es.cluster.requests} == {f"ApiKey {API_KEY}"}


def test_a_space_writes_to_its_own_alias(es: FakeElasticsearch) -> None:
    es.cluster.add_alias(".alerts-security.alerts-secops", ".internal.alerts-security.alerts-secops-000001")  # fmt: skip
    (a,) = alerts(1, space="secops")
    sink = sink_for(es)
    sink.write([a])
    sink.close()
    ((meta, doc),) = [tuple(bulk_lines(es.cluster)[0])]
    assert meta == {"create": {"_index": ".alerts-security.alerts-secops", "_id": a.id,
                               "require_alias": True}}  # fmt: skip
    assert doc["kibana.space_ids"] == ["secops"]
    assert a.id in es.cluster.indices[".internal.alerts-security.alerts-secops-000001"]
    assert es.cluster.indices[BACKING] == {}


def test_after_a_rollover_and_a_restart_nothing_is_duplicated(es: FakeElasticsearch) -> None:
    a, b = alerts(2)
    first = sink_for(es)
    first.write([a])
    first.close()
    es.cluster.rollover(ALIAS, ".internal.alerts-security.alerts-default-000002")
    later = sink_for(es)  # a restarted service: it knows nothing of where alerts went
    later.write([a, b])  # the outbox hands `a` over again (at-least-once)
    later.write([suppressed(a, 1)])
    later.close()
    assert (later.existing, later.created, later.updated) == (1, 1, 1)
    assert es.cluster.find(ALIAS, a.id) == BACKING  # once, where it was first created
    assert a.id not in es.cluster.indices[".internal.alerts-security.alerts-default-000002"]
    lookups = [r.json() for r in es.cluster.requests_to("/_search")]
    assert lookups == [
        {"query": {"ids": {"values": [a.id]}}, "_source": False, "size": 1},
        {"query": {"ids": {"values": [a.id, b.id]}}, "_source": False, "size": 2},
    ]
    update = bulk_lines(es.cluster)[-1]
    assert update[0] == {"update": {"_index": BACKING, "_id": a.id, "require_alias": False}}


def test_429_is_retried_with_backoff_409_is_fine_and_a_rejected_item_is_reported(
    es: FakeElasticsearch,
) -> None:
    a, b, c = alerts(3)
    es.cluster.indices[BACKING][b.id] = dict(b.doc)  # already there: the lookup finds it
    es.cluster.item_failures[a.id] = [(429, "es_rejected_execution_exception")]
    es.cluster.item_failures[c.id] = [(400, "mapper_parsing_exception")]
    sink = sink_for(es)
    with pytest.raises(SinkError) as err:
        sink.write([a, b, c])
    assert str(err.value) == (
        f"elasticsearch:{es.spec()}: 1 alert(s) rejected: create {c.id[:12]} HTTP 400 "
        "mapper_parsing_exception: mapper_parsing_exception (planned)"
    )
    assert a.id in es.cluster.indices[BACKING]  # delivered on the retry
    sent = bulk_lines(es.cluster)
    assert [line for line in sent[0][::2]] == [
        {"create": {"_index": ALIAS, "_id": a.id, "require_alias": True}},
        {"create": {"_index": ALIAS, "_id": c.id, "require_alias": True}},
    ]
    assert sent[1][::2] == [{"create": {"_index": ALIAS, "_id": a.id, "require_alias": True}}]
    assert (sink.created, sink.existing) == (1, 1)


def test_a_whole_request_rejected_with_429_is_sent_again(es: FakeElasticsearch) -> None:
    (a,) = alerts(1)
    es.cluster.bulk_failures = [429]
    sink = sink_for(es)
    sink.write([a])
    sink.close()
    assert len(es.cluster.requests_to("/_bulk")) == 2
    assert a.id in es.cluster.indices[BACKING]


def test_without_kibanas_alias_nothing_is_created_and_the_error_says_why(
    es: FakeElasticsearch,
) -> None:
    (a,) = alerts(1, space="newspace")
    sink = sink_for(es)
    with pytest.raises(SinkError, match=r"index_not_found_exception: no such index "
                       r"\[\.alerts-security\.alerts-newspace\] and \[require_alias\].*open the "
                       r"Security app's Alerts page in that space once"):  # fmt: skip
        sink.write([a])
    assert ".alerts-security.alerts-newspace" not in es.cluster.indices


def test_wrong_credentials_are_a_clear_error(es: FakeElasticsearch) -> None:
    (a,) = alerts(1)
    sink = ElasticsearchSink(parse_target(es.spec(), {"RAREBIRD_ES_API_KEY": "bm9wZTpub3Bl"}))
    with pytest.raises(SinkError, match=r"cannot look up alerts in \.alerts-security\.alerts-"
                       r"default: HTTP 403: security_exception: action "):  # fmt: skip
        sink.write([a])


def test_basic_auth_from_a_config_file(tmp_path: Path) -> None:
    conf = tmp_path / "es.toml"
    conf.write_text('[elasticsearch]\nusername = "rarebird_writer"\npassword = "s3cret"\n')
    (a,) = alerts(1)
    with FakeElasticsearch() as es:
        es.cluster.add_alias(ALIAS, BACKING)
        es.cluster.authorization = "Basic " + base64.b64encode(b"rarebird_writer:s3cret").decode()
        sink = open_sink(es.spec(query=f"config={conf}", prefix="elasticsearch"))
        sink.write([a])
        sink.close()
        assert a.id in es.cluster.indices[BACKING]


def test_secrets_on_the_command_line_are_refused() -> None:
    with pytest.raises(ElasticError, match="credentials do not belong on the command line"):
        parse_target("es+https://elastic:changeme@es.example:9200", {})
    with pytest.raises(SinkError, match="unknown option 'password'"):
        open_sink("elasticsearch+https://es.example:9200?password=x")


def test_tls_with_the_clusters_ca(tmp_path: Path) -> None:
    ctx, ca = make_tls(tmp_path)
    (a,) = alerts(1)
    with FakeElasticsearch(tls=ctx) as es:
        es.cluster.add_alias(ALIAS, BACKING)
        trusting = ElasticsearchSink(parse_target(es.spec(query=f"ca_certs={ca}"), {}))
        trusting.write([a])
        trusting.close()
        assert a.id in es.cluster.indices[BACKING]
        untrusting = ElasticsearchSink(parse_target(es.spec(), {}))
        with pytest.raises(SinkError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            untrusting.write(alerts(2)[1:])


def test_dry_run_prints_the_bulk_body_and_sends_nothing(es: FakeElasticsearch) -> None:
    a, b = alerts(2)
    out = io.StringIO()
    sink = sink_for(es, query="dry_run=true", dry_run_out=out)
    sink.write([a, b])
    sink.write([suppressed(a, 2)])
    sink.close()
    assert es.cluster.requests == []
    lines = out.getvalue().splitlines()
    assert lines[0] == (f"rarebird: dry run: POST {es.spec().replace('es+', '')}/_bulk"
                        "?require_alias=true (not sent)")  # fmt: skip
    assert lines[1] == f'{{"create":{{"_index":"{ALIAS}","_id":"{a.id}","require_alias":true}}}}'
    assert lines[-1] == ('{"doc":{"kibana.alert.last_detected":"2026-03-02T12:45:00.000Z",'
                         '"kibana.alert.suppression.docs_count":2}}')  # fmt: skip


def test_data_streams_write_without_require_alias(es: FakeElasticsearch) -> None:
    es.cluster.indices[ALIAS] = {}  # a data stream takes creates by its own name
    del es.cluster.aliases[ALIAS]
    (a,) = alerts(1)
    sink = sink_for(es, query="data_streams=true")
    sink.write([a])
    sink.close()
    assert bulk_lines(es.cluster)[0][0] == {"create": {"_index": ALIAS, "_id": a.id}}
    assert es.cluster.requests_to("/_bulk")[0].query == {"require_alias": "false"}


def test_the_output_keeps_the_sink_contract(es: FakeElasticsearch) -> None:
    def delivered() -> list[dict[str, Any]]:
        return list(es.cluster.indices[BACKING].values())

    check_sink(lambda: sink_for(es), delivered, alerts(3),
               change=("kibana.alert.suppression.docs_count", 4))  # fmt: skip
