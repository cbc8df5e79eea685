"""Sinks against real files, a real SQLite store, a real HTTP server and real syslog listeners
on loopback."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from rarebird.alerts import Alert, RuleIdentity, build_alert
from rarebird.sinks import (
    NdjsonSink,
    SinkError,
    SqliteSink,
    SyslogSink,
    WebhookSink,
    open_sink,
)
from rarebird.sinks.syslog import format_message
from rarebird.sinks.webhook import auth_from_env
from rarebird.store.alerts import get_alert, list_alerts
from tests.rule_support import at, make_store, record, rule


def make_alerts(n: int, start: int = 0) -> list[Alert]:
    r = rule()
    ident = RuleIdentity.for_rule(r)
    out = []
    for i in range(start, start + n):
        rec = record(at(0), f"user{i}", 50 + i)
        out.append(build_alert(rec, rec.doc_id, r, ident, at(15)))
    return out


def revised(alert: Alert, count: int) -> Alert:
    doc = dict(alert.doc)
    doc["kibana.alert.suppression.docs_count"] = count
    return Alert(alert.id, doc, alert.revision + 1)


# --- files ----------------------------------------------------------------------------------


def test_ndjson_file_appends_across_runs(tmp_path: Path) -> None:
    path = tmp_path / "alerts.ndjson"
    a, b = make_alerts(2)
    sink = NdjsonSink(str(path))
    sink.write([a])
    sink.close()
    sink = NdjsonSink(str(path))
    sink.write([b])
    sink.close()
    lines = path.read_text().splitlines()
    assert [json.loads(x)["kibana.alert.uuid"] for x in lines] == [a.id, b.id]
    assert json.loads(lines[0]) == a.doc


def test_ndjson_to_stdout(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    (a,) = make_alerts(1)
    sink = open_sink("ndjson:-")
    sink.write([a])
    sink.close()
    out = capsysbinary.readouterr().out
    assert orjson.loads(out.splitlines()[0])["kibana.alert.uuid"] == a.id


def test_es_bulk_body(tmp_path: Path) -> None:
    path = tmp_path / "bulk.ndjson"
    a, b = make_alerts(2)
    sink = open_sink(f"es-bulk:{path}")
    sink.write([a, b])
    sink.write([revised(a, 3)])
    sink.close()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    alias = ".alerts-security.alerts-default"
    # new alerts: create, never into a plain index Kibana's alias could then not take
    assert lines[0] == {"create": {"_index": alias, "_id": a.id, "require_alias": True}}
    assert lines[1] == a.doc
    assert lines[2] == {"create": {"_index": alias, "_id": b.id, "require_alias": True}}
    # a changed alert: a partial update of what changed, not a full replace
    assert lines[4] == {"update": {"_index": alias, "_id": a.id, "require_alias": True}}
    assert lines[5] == {"doc": {"kibana.alert.suppression.docs_count": 3}}
    assert len(lines) == 6
    assert path.read_text().endswith("\n")  # _bulk needs the final newline


def test_es_bulk_writes_each_alert_into_its_spaces_alias_and_leaves_the_workflow_alone(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bulk.ndjson"
    r = rule()
    rec = record(at(0), "eve", 70)
    alert = build_alert(rec, rec.doc_id, r, RuleIdentity.for_rule(r, space_id="secops"), at(15))
    acked = alert.with_workflow_status("acknowledged", now=at(20), user="ann")
    sink = open_sink(f"es-bulk:{path}")
    sink.write([alert])
    sink.write([acked])  # rarebird's own ack: Kibana's workflow fields are not sent
    sink.close()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines[0] == {"create": {"_index": ".alerts-security.alerts-secops", "_id": alert.id,
                                   "require_alias": True}}  # fmt: skip
    assert lines[1]["kibana.space_ids"] == ["secops"]
    assert len(lines) == 2


def test_sqlite_sink_into_another_store(tmp_path: Path) -> None:
    a, b = make_alerts(2)
    sink = SqliteSink.open(str(tmp_path / "shared.db"))
    sink.write([a, b])
    sink.write([revised(a, 2)])
    sink.close()
    other = make_store(tmp_path, "shared.db")
    assert len(list_alerts(other)) == 2
    assert get_alert(other, a.id).doc["kibana.alert.suppression.docs_count"] == 2
    other.close()


def test_unknown_output_specs() -> None:
    with pytest.raises(SinkError, match="unknown output 'kafka'"):
        open_sink("kafka")
    with pytest.raises(SinkError, match="unknown output kind 'csv'"):
        open_sink("csv:x.csv")
    with pytest.raises(SinkError, match="expected syslog\\+udp://HOST:PORT"):
        open_sink("syslog+udp://localhost")


# --- webhook --------------------------------------------------------------------------------


class Receiver:
    """A real HTTP server on loopback. ``script`` gives the status of each request in turn
    (then 200); it can be stopped and started again on the same port."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.statuses: list[int] = []
        self.script: list[int] = []
        self.retry_after: str | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.script.pop(0) if receiver.script else 200
                receiver.statuses.append(status)
                if status == 200:
                    receiver.received.append(json.loads(body))
                    receiver.headers.append(dict(self.headers))
                self.send_response(status)
                if status != 200 and receiver.retry_after is not None:
                    self.send_header("Retry-After", receiver.retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook?token=t"

    def ids(self) -> list[str]:
        return [d["kibana.alert.uuid"] for d in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class Mono:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_webhook_posts_each_alert(receiver: Receiver) -> None:
    alerts = make_alerts(2)
    sink = WebhookSink(receiver.url)
    sink.write(alerts)
    sink.close()
    assert receiver.ids() == [a.id for a in alerts]
    assert receiver.received[0] == alerts[0].doc
    h = receiver.headers[0]
    assert h["Content-Type"] == "application/json"
    assert h["Idempotency-Key"] == f"{alerts[0].id}-0"
    assert h["X-Rarebird-Alert-Revision"] == "0"
    assert "Authorization" not in h


def test_webhook_failures_say_how_many_went_through_and_whether_to_retry(
    receiver: Receiver,
) -> None:
    a1, a2, a3 = make_alerts(3)
    receiver.script = [200, 503]
    with pytest.raises(SinkError) as err:
        WebhookSink(receiver.url).write([a1, a2, a3])
    assert (err.value.delivered, err.value.retryable, str(err.value)) == (
        1, True, f"{receiver.url}: HTTP 503",
    )  # fmt: skip
    receiver.script = [400]
    with pytest.raises(SinkError) as err:
        WebhookSink(receiver.url).write([a2])
    assert (err.value.delivered, err.value.retryable) == (0, False)
    with pytest.raises(SinkError) as err:
        WebhookSink(f"http://127.0.0.1:{free_port()}/").write([a3])
    assert err.value.retryable
    assert "ConnectionRefusedError" in str(err.value)
    assert receiver.ids() == [a1.id]


@pytest.mark.parametrize(
    ("env", "header"),
    [
        ({"RAREBIRD_WEBHOOK_AUTH": "splunk", "RAREBIRD_WEBHOOK_TOKEN": "hec-123"},
         ("Authorization", "Splunk hec-123")),
        ({"RAREBIRD_WEBHOOK_AUTH": "bearer", "RAREBIRD_WEBHOOK_TOKEN": "t0k"},
         ("Authorization", "Bearer t0k")),
        ({"RAREBIRD_WEBHOOK_AUTH": "header:X-Api-Key", "RAREBIRD_WEBHOOK_TOKEN": "k"},
         ("X-Api-Key", "k")),
    ],
)  # fmt: skip
def test_webhook_authentication_from_the_environment(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
    header: tuple[str, str],
) -> None:  # fmt: skip
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    sink = open_sink(receiver.url)
    sink.write(make_alerts(1))
    assert receiver.headers[0][header[0]] == header[1]


def test_webhook_token_from_a_file_and_bad_settings(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("from-file\n")
    assert auth_from_env({"RAREBIRD_WEBHOOK_AUTH": "splunk",
                          "RAREBIRD_WEBHOOK_TOKEN_FILE": str(token)}) == {
        "Authorization": "Splunk from-file"
    }  # fmt: skip
    with pytest.raises(SinkError, match="needs a token"):
        auth_from_env({"RAREBIRD_WEBHOOK_AUTH": "bearer"})
    with pytest.raises(SinkError, match="unknown authentication 'basic'"):
        auth_from_env({"RAREBIRD_WEBHOOK_AUTH": "basic", "RAREBIRD_WEBHOOK_TOKEN": "x"})
    with pytest.raises(SinkError, match="line break"):
        auth_from_env({"RAREBIRD_WEBHOOK_AUTH": "bearer", "RAREBIRD_WEBHOOK_TOKEN": "a\r\nX: y"})


# --- syslog ---------------------------------------------------------------------------------


def test_rfc5424_message_format() -> None:
    (a,) = make_alerts(1)
    msg = format_message(a, facility=4, hostname="sensor-1")
    assert msg.decode() == (
        f"<37>1 2026-03-02T12:15:00.000Z sensor-1 rarebird - alert "
        f'[rarebird@32473 id="{a.id}" rule_id="c28c4d8c-f014-40ef-88b6-79a1d67cd499" '
        'original_time="2026-03-02T12:00:00.000Z" user="user0" host="h1" process="ss" '
        'score="50" severity="low" status="open" duplicates="0"] '
        "event with process ss, by user0 on h1 created low alert "
        "Unusual Linux Network Connection Discovery."
    )
    doc = dict(a.doc)
    doc["user"] = {"name": ['we"ird]\\']}
    doc["kibana.alert.severity"] = "critical"
    odd = format_message(Alert(a.id, doc, 1), facility=16, hostname="")
    assert odd.startswith(b"<130>1 2026-03-02T12:15:00.000Z - rarebird - alert-update ")
    assert b'user="we\\"ird\\]\\\\"' in odd


def test_syslog_over_udp() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(5)
        port = listener.getsockname()[1]
        a, b = make_alerts(2)
        sink = open_sink(f"syslog+udp://127.0.0.1:{port}", hostname="sensor-1")
        sink.write([a, b])
        sink.close()
        got = [listener.recv(65535), listener.recv(65535)]
    assert got == [format_message(a, hostname="sensor-1"), format_message(b, hostname="sensor-1")]


def test_syslog_over_tcp_with_octet_counting() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(5)
    port = listener.getsockname()[1]
    chunks: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            while data := conn.recv(65536):
                chunks.append(data)

    t = threading.Thread(target=serve)
    t.start()
    a, b = make_alerts(2)
    sink = SyslogSink("127.0.0.1", port, protocol="tcp", hostname="sensor-1")
    sink.write([a])
    sink.write([b])
    sink.close()
    t.join(5)
    listener.close()
    stream = b"".join(chunks)
    frames = []
    while stream:
        length, _, rest = stream.partition(b" ")
        frames.append(rest[: int(length)])
        stream = rest[int(length) :]
    assert frames == [
        format_message(a, hostname="sensor-1"),
        format_message(b, hostname="sensor-1"),
    ]


def test_syslog_tcp_without_listener_raises() -> None:
    sink = SyslogSink("127.0.0.1", free_port(), protocol="tcp", hostname="x")
    with pytest.raises(SinkError, match="cannot connect"):
        sink.write(make_alerts(1))


def test_webhook_authentication_from_the_serve_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rarebird.definitions.service import config_from_dict
    from rarebird.errors import DefinitionError
    from rarebird.sinks.webhook import auth_headers

    monkeypatch.setenv("HEC_TOKEN", "hec-from-env")
    cfg = config_from_dict({"store": "s.db", "alerts": {
        "outputs": ["https://splunk.example:8088/services/collector/raw"],
        "webhook_auth": "splunk", "webhook_token_env": "HEC_TOKEN"}}, str(tmp_path / "r.toml"))  # fmt: skip
    alerts = cfg.alerts
    assert alerts.webhook_auth is not None
    assert auth_headers(alerts.webhook_auth, alerts.webhook_token()) == {
        "Authorization": "Splunk hec-from-env"
    }
    with pytest.raises(DefinitionError, match="alerts.webhook_auth: needs webhook_token_env"):
        config_from_dict({"store": "s.db", "alerts": {"webhook_auth": "bearer"}})
    with pytest.raises(DefinitionError, match="must be bearer, splunk or header:NAME"):
        config_from_dict({"store": "s.db", "alerts": {"webhook_auth": "basic",
                                                      "webhook_token_env": "X"}})  # fmt: skip
