"""Every rule store and every sink keeps its contract (``rarebird.testing``): the SQLite rule
store agrees with the in-memory reference on every rule run, and every output kind delivers
new and changed alerts -- to real files, a real store and real loopback receivers."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from rarebird.alerts import Alert
from rarebird.definitions.rule import AlertSuppression
from rarebird.sinks import open_sink
from rarebird.sinks.base import Sink
from rarebird.store import open_store
from rarebird.store.alerts import list_alerts
from rarebird.testing.sinks import MemorySink, check_sink
from rarebird.testing.stores import MemoryRuleStore, SqliteSeededRuleStore, check_rule_store
from tests.rule_support import at, record, rule
from tests.test_sinks import Receiver, make_alerts

# --- rule stores --------------------------------------------------------------------------


def scenario_records() -> list[Any]:
    recs = [record(at(0), f"user{i}", 20 + 7 * i) for i in range(8)]
    recs += [record(at(15), "user1", 90, hosts=("h2",)), record(at(30), "late", 60)]
    recs.append(record(at(30), "interim", 99, interim=True))
    return recs


@pytest.mark.parametrize(
    "variant",
    ["plain", "max_signals", "suppression"],
)
def test_the_sqlite_rule_store_agrees_with_the_reference(tmp_path: Path, variant: str) -> None:
    r = rule()
    if variant == "max_signals":
        r = replace(r, max_signals=3)
    elif variant == "suppression":
        r = replace(r, alert_suppression=AlertSuppression(group_by=("host.name",), duration=None))
    store = open_store(str(tmp_path / "contract.db"))
    runs = check_rule_store(
        lambda: SqliteSeededRuleStore(store), MemoryRuleStore, r, scenario_records(),
        [at(15), at(30), at(45), at(60)],
    )  # fmt: skip
    assert sum(len(run.new_alerts) for run in runs) > 0
    store.close()


# --- sinks --------------------------------------------------------------------------------


def _ndjson(path: Path) -> Callable[[], list[dict[str, Any]]]:
    return lambda: [json.loads(x) for x in path.read_text().splitlines()]


def _bulk(path: Path) -> Callable[[], list[dict[str, Any]]]:
    """The documents a _bulk body leaves in the index: creates, then partial updates merged."""

    def read() -> list[dict[str, Any]]:
        lines = [json.loads(x) for x in path.read_text().splitlines()]
        docs: dict[str, dict[str, Any]] = {}
        for action, body in zip(lines[::2], lines[1::2], strict=True):
            ((op, meta),) = action.items()
            if op == "create":
                docs.setdefault(meta["_id"], dict(body))
            else:
                assert op == "update", op
                docs[meta["_id"]].update(body["doc"])
        return list(docs.values())

    return read


_SD = re.compile(rb'\[rarebird@\d+ id="([0-9a-f]+)".* status="([a-z]+)"')


def _syslog_docs(messages: Sequence[bytes]) -> list[dict[str, Any]]:
    out = []
    for msg in messages:
        m = _SD.search(msg)
        assert m is not None, msg
        out.append({"kibana.alert.uuid": m.group(1).decode(),
                    "kibana.alert.workflow_status": m.group(2).decode()})  # fmt: skip
    return out


@pytest.fixture
def udp_listener() -> Iterator[tuple[int, list[bytes]]]:
    got: list[bytes] = []
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                got.append(sock.recv(65535))
            except TimeoutError:
                continue

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield sock.getsockname()[1], got
    stop.set()
    t.join(5)
    sock.close()


@pytest.fixture
def tcp_listener() -> Iterator[tuple[int, list[bytes]]]:
    got: list[bytes] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(5)

    def serve() -> None:
        stream = b""
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            while data := conn.recv(65536):
                stream += data
        while stream:
            length, _, rest = stream.partition(b" ")
            got.append(rest[: int(length)])
            stream = rest[int(length) :]

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield listener.getsockname()[1], got
    t.join(5)
    listener.close()


def _wait(got: Sequence[Any], n: int) -> None:
    import time

    deadline = time.monotonic() + 5
    while len(got) < n and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.mark.parametrize(
    "kind", ["memory", "ndjson", "es-bulk", "sqlite", "webhook", "syslog+udp", "syslog+tcp"]
)
def test_every_output_delivers_new_and_changed_alerts(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    alerts = make_alerts(3)
    make: Callable[[], Sink]
    delivered: Callable[[], Sequence[Mapping[str, Any]]]
    if kind == "memory":
        fake = MemorySink()
        make, delivered = (lambda: fake), (lambda: [a.doc for a in fake.written])
    elif kind == "ndjson":
        path = tmp_path / "alerts.ndjson"
        make, delivered = (lambda: open_sink(f"ndjson:{path}")), _ndjson(path)
    elif kind == "es-bulk":
        # the Elasticsearch outputs leave the workflow to Kibana: a suppression count changes
        path = tmp_path / "bulk.ndjson"
        check_sink(lambda: open_sink(f"es-bulk:{path}"), _bulk(path), alerts,
                   change=("kibana.alert.suppression.docs_count", 4))  # fmt: skip
        return
    elif kind == "sqlite":
        path = tmp_path / "other.db"

        def stored() -> list[dict[str, Any]]:
            with open_store(str(path), create=False) as other:
                return [a.doc for a in list_alerts(other)]

        make, delivered = (lambda: open_sink(f"sqlite:{path}")), stored
    elif kind == "webhook":
        receiver = Receiver().start()
        try:
            check_sink(lambda: open_sink(receiver.url, headers={}),
                       lambda: receiver.received, alerts)  # fmt: skip
        finally:
            receiver.stop()
        return
    else:
        fixture = "udp_listener" if kind == "syslog+udp" else "tcp_listener"
        port, got = request.getfixturevalue(fixture)

        def messages() -> list[dict[str, Any]]:
            _wait(got, len(alerts) + 1)  # each alert, and the first once more (changed)
            return _syslog_docs(got)

        make, delivered = (lambda: open_sink(f"{kind}://127.0.0.1:{port}")), messages
    check_sink(make, delivered, alerts)


def test_a_sink_that_drops_an_alert_breaks_the_contract() -> None:
    class Lossy(MemorySink):
        def write(self, alerts: Sequence[Alert]) -> None:
            super().write(alerts[:1])

    fake = Lossy()
    with pytest.raises(AssertionError, match="every alert is delivered"):
        check_sink(lambda: fake, lambda: [a.doc for a in fake.written], make_alerts(3))
