"""The HTTP endpoint of ``rarebird serve``, on loopback, with the real service loop behind it:
authentication, limits, malformed batches, a 10,000-event batch, batch ids, health, metrics."""

from __future__ import annotations

import gzip
import http.client
import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rarebird.definitions.service import HttpConfig, ServeConfig
from rarebird.serve.service import Service
from tests.serve_support import Recorder, event, query, wait_for, write_definitions

TOKEN = "s3cret-token-for-tests-0123456789"
MAX_BODY = 4 * 1024 * 1024


@dataclass
class Served:
    service: Service
    port: int
    store: Path
    log: Recorder

    def request(self, method: str, path: str, body: bytes = b"",
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def ingest(self, body: bytes, **headers: str) -> tuple[int, dict[str, Any]]:
        hdrs = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"}
        hdrs.update({k.replace("_", "-"): v for k, v in headers.items()})
        status, _, data = self.request("POST", "/ingest", body, hdrs)
        return status, json.loads(data)


def serve_http(
    tmp_path: Path, token: str | None = TOKEN, routes: Sequence[Any] = (), **http: Any
) -> Iterator[Served]:
    defs = write_definitions(tmp_path / "defs")
    cfg = ServeConfig(
        store=str(tmp_path / "serve.db"), job=str(defs.job), datafeed=str(defs.datafeed),
        rule=str(defs.rule),
        http=HttpConfig(listen="127.0.0.1:0", token=token, max_body_bytes=MAX_BODY,
                        max_events=10_000, **http),
        poll_interval=timedelta(milliseconds=50),
    )  # fmt: skip
    log = Recorder()
    service = Service(cfg, log=log, http_routes=routes)
    stop = threading.Event()
    opened = threading.Event()
    failed: list[BaseException] = []

    def main() -> None:  # the store belongs to the thread that opens it, as in the CLI
        try:
            service.open()
        except BaseException as exc:  # handed to the test thread
            failed.append(exc)
            return
        finally:
            opened.set()
        service.run(stop)

    thread = threading.Thread(target=main)
    thread.start()
    assert opened.wait(30)
    if failed:
        thread.join()
        raise failed[0]
    assert service.http is not None
    port = service.http.port
    try:
        yield Served(service, port, tmp_path / "serve.db", log)
    finally:
        stop.set()
        thread.join(timeout=30)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    yield from serve_http(tmp_path)


def ndjson(docs: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(d) + "\n" for d in docs).encode()


def now_events(n: int, **kw: Any) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [event(now + timedelta(milliseconds=i % 500), **kw) for i in range(n)]


def pending(store: Path) -> int:
    return int(query(store, "SELECT count(*) FROM serve_pending")[0][0])


def test_requests_without_the_token_are_refused_and_nothing_is_taken(served: Served) -> None:
    body = ndjson(now_events(3, user="alice"))
    for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"},
                    {"Authorization": f"Basic {TOKEN}"}):  # fmt: skip
        status, hdrs, data = served.request("POST", "/ingest", body, headers)
        assert status == 401
        assert hdrs["www-authenticate"] == 'Bearer realm="rarebird"'
        assert json.loads(data) == {"error": "missing or wrong bearer token"}
    assert pending(served.store) == 0


def test_oversized_and_malformed_batches_are_refused_whole_with_clear_errors(
    served: Served,
) -> None:
    big = b'{"@timestamp": "2026-03-01T00:00:00Z"}\n' * (MAX_BODY // 38 + 10)
    status, doc = served.ingest(big)
    assert status == 413
    assert doc == {"error": f"body too large: {len(big)} bytes, at most {MAX_BODY}",
                   "max_body_bytes": MAX_BODY}  # fmt: skip

    status, doc = served.ingest(b"{}\n" * 10_001)
    assert (status, doc["error"]) == (
        413,
        "batch too large: 10001 documents, at most 10000 per request",
    )

    status, doc = served.ingest(gzip.compress(b"x" * (MAX_BODY + 1)), Content_Encoding="gzip")
    assert status == 413
    assert doc["error"].startswith("body too large once decompressed")

    good = ndjson(now_events(2, user="alice"))
    body = good + b'{"user": {"name": "bob"}}\n' + b"not json\n" + good
    status, doc = served.ingest(body)
    assert status == 400
    assert doc["error"] == "malformed batch: 2 of 6 lines are not events; nothing was taken"
    assert [(e["line"], e["reason"]) for e in doc["errors"]] == [
        (3, "missing @timestamp"),
        (4, "invalid JSON"),
    ]
    status, doc = served.ingest(good, Content_Encoding="br")
    assert (status, doc["error"]) == (415, "unsupported Content-Encoding 'br' (use gzip or none)")
    assert pending(served.store) == 0  # none of it, not even the good lines

    status, _, data = served.request("GET", "/ingest")
    assert (status, json.loads(data)["error"]) == (405, "use POST to send a batch")
    status, _, data = served.request("GET", "/nope")
    assert status == 404


def test_a_10000_event_batch_is_taken_without_loss(served: Served) -> None:
    docs = []
    for i, doc in enumerate(now_events(10_000, user="placeholder")):
        doc["user"]["name"] = f"user{i % 50}"
        doc["process"]["pid"] = 1000 + i  # distinct events (kept events are keyed by content)
        if i % 10 == 9:
            doc["process"]["name"] = "ls"  # not a discovery tool: the datafeed drops it
        docs.append(doc)
    status, doc = served.ingest(ndjson(docs))
    assert status == 200
    assert doc == {"accepted": 10_000, "received": 10_000, "kept": 9_000, "not_matched": 1_000,
                   "late": 0, "older_than_backfill": 0, "quarantined": 0}  # fmt: skip

    def modelled() -> bool:
        rows = query(served.store, "SELECT state FROM job_state")
        return bool(rows) and json.loads(rows[0][0])["stats"]["processed_record_count"] == 9_000

    wait_for(modelled, timeout=20, what="the job to process the batch")
    assert query(served.store, "SELECT count(*) FROM events")[0][0] == 9_000
    metrics = served.request("GET", "/metrics")[2].decode()
    assert 'rarebird_events_kept_total{source="http"} 9000' in metrics
    assert 'rarebird_ingest_batches_total{outcome="accepted"} 1' in metrics


def test_a_gzip_batch_with_a_batch_id_is_taken_once(served: Served) -> None:
    body = gzip.compress(ndjson(now_events(5, user="alice")))
    first = served.ingest(body, Content_Encoding="gzip", X_Rarebird_Batch_Id="batch-1",
                          X_Rarebird_Source="vector")  # fmt: skip
    again = served.ingest(body, Content_Encoding="gzip", X_Rarebird_Batch_Id="batch-1",
                          X_Rarebird_Source="vector")  # fmt: skip
    assert first == (200, {"accepted": 5, "received": 5, "kept": 5, "not_matched": 0, "late": 0,
                           "older_than_backfill": 0, "quarantined": 0})  # fmt: skip
    assert again == (200, {**first[1], "duplicate": True})
    metrics = served.request("GET", "/metrics")[2].decode()
    assert 'rarebird_events_kept_total{source="http:vector"} 5' in metrics
    assert 'rarebird_ingest_batches_total{outcome="duplicate"} 1' in metrics


def test_a_json_array_batch_is_taken_too(served: Served) -> None:
    status, doc = served.ingest(json.dumps(now_events(3, user="alice")).encode())
    assert (status, doc["accepted"], doc["kept"]) == (200, 3, 3)


def test_health_and_metrics(served: Served) -> None:
    wait_for(lambda: json.loads(served.request("GET", "/healthz")[2])["mode"] == "live", 10)
    status, hdrs, data = served.request("GET", "/healthz")
    assert status == 200
    assert hdrs["content-type"] == "application/json"
    doc = json.loads(data)
    assert (doc["status"], doc["mode"], doc["job_id"], doc["memory_status"]) == (
        "ok",
        "live",
        "fast_discovery",
        "ok",
    )
    status, hdrs, data = served.request("GET", "/metrics")
    assert status == 200
    assert hdrs["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = data.decode()
    families = {ln.split()[2]: ln.split()[3] for ln in text.splitlines() if ln.startswith("# TYPE")}
    for name, kind in {
        "rarebird_up": "gauge", "rarebird_events_read_total": "counter",
        "rarebird_events_kept_total": "counter", "rarebird_events_dropped_total": "counter",
        "rarebird_events_late_total": "counter", "rarebird_buckets_finalised_total": "counter",
        "rarebird_job_memory_status": "gauge", "rarebird_alerts_total": "counter",
        "rarebird_lag_seconds": "gauge", "rarebird_job_data_count": "gauge",
    }.items():  # fmt: skip
        assert families[name] == kind
    assert "rarebird_up 1" in text
    assert 'rarebird_job_memory_status{status="ok"} 1' in text
    assert 'rarebird_job_data_count{name="processed_record_count"} 0' in text
    for ln in text.splitlines():
        if not ln.startswith("#"):
            name_labels, value = ln.rsplit(" ", 1)
            float(value)


def test_without_a_token_ingest_is_closed(tmp_path: Path) -> None:
    gen = serve_http(tmp_path, token=None)
    served = next(gen)
    try:
        status, doc = served.ingest(ndjson(now_events(1, user="alice")))
        assert status == 403
        assert doc["error"].startswith("ingest is disabled: no token is configured")
        assert served.request("GET", "/healthz")[0] == 200
    finally:
        gen.close()
