"""Delivery of alerts to outputs that fail: a real webhook receiver on loopback answering 429
and 500 then 200, going down and coming back, refusing an alert for good, or accepting and never
answering (against a live ``serve``); a real syslog TCP receiver restarting; ``detect`` to a dead
port. Nothing lost, nothing doubled, every dead letter visible and replayable."""

from __future__ import annotations

import http.client
import json
import random
import socket
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rarebird.definitions.service import AlertsConfig, HttpConfig, ServeConfig
from rarebird.run.delivery import Delivery, RetryPolicy
from rarebird.serve.service import Service
from rarebird.sinks import SyslogSink, open_sink
from rarebird.store import open_store
from rarebird.store.delivery import dead_letters, delivery_states, outbox_size, pending_for
from rarebird.store.serve import add_to_outbox
from tests.rule_support import scenario_events, write_ndjson
from tests.serve_support import RAREBIRD, Recorder, event, serve_env, wait_for, write_definitions
from tests.test_ingest import TOKEN, ndjson
from tests.test_sinks import Receiver, free_port, make_alerts


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> bool:
        self.calls.append(seconds)
        return False


def test_backoff_is_exponential_with_jitter_and_honours_retry_after() -> None:
    policy = RetryPolicy(retries=5, backoff=0.5, max_backoff=4.0)
    rng = random.Random(1)
    for attempt, step in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0)]:
        for _ in range(50):
            assert step / 2 <= policy.delay(attempt, None, rng) <= step
    assert policy.delay(1, 3.0, rng) == 3.0  # Retry-After wins over a shorter step
    assert policy.delay(1, 60.0, rng) == 4.0  # within the cap


def test_429_and_500_then_200_delivered_once_each(tmp_path: Path) -> None:
    receiver = Receiver().start()
    try:
        receiver.script = [429, 500, 503]
        receiver.retry_after = "0.2"
        store = open_store(str(tmp_path / "s.db"))
        alerts = make_alerts(3)
        add_to_outbox(store, alerts)
        sleeps, log = Sleeps(), Recorder()
        delivery = Delivery(store, [open_sink(receiver.url, headers={})], sleep=sleeps, log=log,
                            rng=random.Random(7))  # fmt: skip
        reports = delivery.deliver()
        assert receiver.statuses == [429, 500, 503, 200, 200, 200]
        assert receiver.ids() == [a.id for a in alerts]  # once each, in order
        assert len(sleeps.calls) == 3
        assert sleeps.calls[0] >= 0.2  # Retry-After
        (report,) = reports.values()
        assert (report.delivered, report.retries, report.dead_lettered, report.left) == (3, 3, 0, 0)
        assert outbox_size(store) == 0
        assert dead_letters(store) == []
        store.close()
    finally:
        receiver.stop()


def test_a_receiver_that_is_down_loses_nothing_and_doubles_nothing(tmp_path: Path) -> None:
    port = free_port()
    store = open_store(str(tmp_path / "s.db"))
    url = f"http://127.0.0.1:{port}/hook"
    a1, a2, a3 = make_alerts(3)
    add_to_outbox(store, [a1, a2])
    log = Recorder()
    delivery = Delivery(store, [open_sink(url, headers={})], sleep=Sleeps(), log=log,
                        policy=RetryPolicy(retries=2, backoff=0.01, max_backoff=0.0))  # fmt: skip
    (report,) = delivery.deliver().values()
    assert (report.delivered, report.left, report.retries) == (0, 2, 2)
    assert pending_for(store, url) == 2
    (waiting,) = log.events("output_waiting")
    assert waiting["waiting"] == 2
    assert waiting["error"].startswith(f"{url}: ConnectionRefusedError")
    add_to_outbox(store, [a3])
    receiver = Receiver(port).start()
    try:
        delivery.deliver()
        assert receiver.ids() == [a1.id, a2.id, a3.id]
        delivery.deliver()  # nothing more
        assert receiver.ids() == [a1.id, a2.id, a3.id]
    finally:
        receiver.stop()
    assert outbox_size(store) == 0
    assert dead_letters(store) == []
    store.close()


def test_a_refused_alert_becomes_a_dead_letter_and_is_replayed_by_a_command(
    tmp_path: Path,
) -> None:
    receiver = Receiver().start()
    db = tmp_path / "s.db"
    try:
        receiver.script = [400]
        store = open_store(str(db))
        a1, a2 = make_alerts(2)
        add_to_outbox(store, [a1, a2])
        log = Recorder()
        Delivery(store, [open_sink(receiver.url, headers={})], sleep=Sleeps(), log=log).deliver()
        assert receiver.ids() == [a2.id]  # the queue moved on
        (letter,) = dead_letters(store)
        assert (letter.sink, letter.alert.id, letter.error) == (
            receiver.url, a1.id, f"{receiver.url}: HTTP 400",
        )  # fmt: skip
        (line,) = log.events("dead_letter")
        assert (line["output"], line["alert_id"]) == (receiver.url, a1.id)
        assert [(s.sink, s.pending, s.dead_letters) for s in delivery_states(store)] == [
            (receiver.url, 0, 1)
        ]
        store.close()
        status = subprocess.run([*RAREBIRD, "outputs", "list", "--store", str(db), "--format",
                                 "json"], capture_output=True, text=True, env=serve_env(),
                                check=True)  # fmt: skip
        assert json.loads(status.stdout)["outputs"] == [
            {"output": receiver.url, "pending": 0, "dead_letters": 1}
        ]
        out = subprocess.run([*RAREBIRD, "outputs", "replay", "--store", str(db)],
                             capture_output=True, text=True, env=serve_env())  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert out.stdout == (f"rarebird: {receiver.url}: 1 dead letter(s) sent, 0 kept; 0 "
                              "alert(s) still waiting in the outbox\n")  # fmt: skip
        assert receiver.ids() == [a2.id, a1.id]
        with open_store(str(db)) as store:
            assert dead_letters(store) == []
    finally:
        receiver.stop()


def test_syslog_tcp_loses_nothing_across_a_receiver_restart(tmp_path: Path) -> None:
    port = free_port()
    frames: list[bytes] = []

    conns: list[socket.socket] = []

    def receiver() -> tuple[socket.socket, threading.Thread]:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(1)

        def serve() -> None:
            conn, _ = listener.accept()
            conns.append(conn)
            buf = b""
            with conn:
                try:
                    while data := conn.recv(65536):
                        buf += data
                        while b" " in buf:
                            length, _, rest = buf.partition(b" ")
                            if len(rest) < int(length):
                                break
                            frames.append(rest[: int(length)])
                            buf = rest[int(length) :]
                except OSError:
                    pass

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        return listener, t

    store = open_store(str(tmp_path / "s.db"))
    sink = SyslogSink("127.0.0.1", port, protocol="tcp", hostname="h", timeout=2)
    delivery = Delivery(store, [sink], sleep=Sleeps(),
                        policy=RetryPolicy(retries=1, backoff=0.01, max_backoff=0.0))  # fmt: skip
    a1, a2, a3 = make_alerts(3)
    listener, thread = receiver()
    add_to_outbox(store, [a1])
    delivery.deliver()
    wait_for(lambda: len(frames) == 1, 5)
    # the receiver restarts: its end of our connection is closed
    listener.close()
    conns[-1].shutdown(socket.SHUT_RDWR)
    thread.join(2)
    add_to_outbox(store, [a2])
    delivery.deliver()  # down: a2 stays in the outbox
    assert pending_for(store, sink.name) == 1
    listener, thread = receiver()
    delivery.deliver()
    add_to_outbox(store, [a3])
    delivery.deliver()
    wait_for(lambda: len(frames) == 3, 5)
    ids = [f.split(b'id="', 1)[1].split(b'"', 1)[0].decode() for f in frames]
    assert ids == [a1.id, a2.id, a3.id]
    sink.close()
    listener.close()
    store.close()


class HungReceiver:
    """Accepts connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                self.held.append(self.sock.accept()[0])
            except (TimeoutError, OSError):
                continue

    def close(self) -> None:
        self._stop = True
        for s in self.held:
            s.close()
        self.sock.close()


@pytest.mark.slow
def test_a_hung_receiver_costs_serve_no_ingestion(tmp_path: Path) -> None:
    hung = HungReceiver()
    defs = write_definitions(tmp_path / "defs")
    cfg = ServeConfig(
        store=str(tmp_path / "serve.db"), job=str(defs.job), datafeed=str(defs.datafeed),
        rule=str(defs.rule), http=HttpConfig(listen="127.0.0.1:0", token=TOKEN),
        alerts=AlertsConfig(outputs=(f"http://127.0.0.1:{hung.port}/hook",)),
        poll_interval=timedelta(milliseconds=50),
    )  # fmt: skip
    service = Service(cfg, log=Recorder())
    stop = threading.Event()
    opened = threading.Event()

    def main() -> None:
        service.open()
        opened.set()
        service.run(stop)

    thread = threading.Thread(target=main)
    thread.start()
    try:
        assert opened.wait(30)
        with open_store(cfg.store) as other:
            add_to_outbox(other, make_alerts(2))  # as a rule run would
        assert service.delivery is not None
        service.delivery.wake()
        wait_for(lambda: hung.held, 5, what="the delivery to connect")
        assert service.http is not None
        port = service.http.port
        started = time.monotonic()
        for i in range(5):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            assert conn.getresponse().status == 200
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            body = ndjson([event(datetime.now(UTC), f"u{i}")])
            conn.request("POST", "/ingest", body, {"Authorization": f"Bearer {TOKEN}"})
            resp = conn.getresponse()
            assert (resp.status, json.loads(resp.read())["kept"]) == (200, 1)
            conn.close()
        assert time.monotonic() - started < 5  # while the receiver still hangs (10 s timeout)
        assert len(hung.held) >= 1
    finally:
        stop.set()
        thread.join(60)
        hung.close()
    # the stop waited for the attempt in progress, then did not try the receiver that had
    # just timed out again (it would have cost the 10 s timeout a second time)
    assert len(hung.held) == 1
    with open_store(cfg.store) as store:
        assert outbox_size(store) == 2  # kept for the next start, not lost


def test_a_stop_gives_an_output_resting_after_a_failure_its_last_chance(tmp_path: Path) -> None:
    """An output that failed before the stop (503, then resting an hour) is tried once more by
    the stop's last pass, and takes the alerts: only a failure after the stop was asked (the
    hung receiver above) is not tried again."""
    from rarebird.clock import SYSTEM_CLOCK
    from rarebird.serve.delivery_worker import DeliveryWorker
    from rarebird.serve.metrics import ServeMetrics

    receiver = Receiver().start()
    try:
        receiver.script = [503]
        path = str(tmp_path / "s.db")
        alerts = make_alerts(2)
        with open_store(path) as store:
            add_to_outbox(store, alerts)
        worker = DeliveryWorker(
            path, lambda: [open_sink(receiver.url, headers={})],
            policy=RetryPolicy(retries=0, backoff=0, max_backoff=3600), log=Recorder(),
            metrics=ServeMetrics(), clock=SYSTEM_CLOCK,
        )  # fmt: skip
        worker.start()
        worker.wake()
        wait_for(lambda: receiver.statuses == [503], 5, what="the first, failed delivery")
        time.sleep(0.3)  # a pass or more while the output rests: nothing is sent
        assert receiver.statuses == [503]
        worker.stop()
        assert receiver.statuses == [503, 200, 200]  # one request an alert
        assert receiver.ids() == [a.id for a in alerts]
        with open_store(path) as store:
            assert outbox_size(store) == 0
    finally:
        receiver.stop()


def test_the_stops_last_pass_starts_no_output_after_the_grace(tmp_path: Path) -> None:
    """Two outputs resting after failures: a receiver that never answers (0.5 s timeout) and
    one that answered 503. With 0.2 s of grace the last pass tries the first, runs past the
    grace, and leaves the second's alerts in the outbox for the next start."""
    from rarebird.clock import SYSTEM_CLOCK
    from rarebird.serve.delivery_worker import DeliveryWorker
    from rarebird.serve.metrics import ServeMetrics
    from rarebird.sinks import WebhookSink

    hung, receiver = HungReceiver(), Receiver().start()
    try:
        receiver.script = [503]
        path = str(tmp_path / "s.db")
        with open_store(path) as store:
            add_to_outbox(store, make_alerts(1))
        hung_url = f"http://127.0.0.1:{hung.port}/hook"
        worker = DeliveryWorker(
            path, lambda: [WebhookSink(hung_url, timeout=0.5), open_sink(receiver.url, headers={})],
            policy=RetryPolicy(retries=0, backoff=0, max_backoff=3600), log=Recorder(),
            metrics=ServeMetrics(), clock=SYSTEM_CLOCK,
        )  # fmt: skip
        worker.start()
        worker.wake()
        wait_for(lambda: receiver.statuses == [503], 5, what="both outputs to fail")
        assert len(hung.held) == 1
        worker.stop(grace=0.2)
        assert len(hung.held) == 2  # the last pass tried the first output (it failed before)
        assert receiver.statuses == [503]  # and started nothing after the grace
        with open_store(path) as store:
            assert pending_for(store, receiver.url) == 1
    finally:
        receiver.stop()
        hung.close()


def test_detect_to_a_dead_port_keeps_the_alerts_for_a_later_run(tmp_path: Path) -> None:
    events = write_ndjson(tmp_path / "events.ndjson", scenario_events())
    store = tmp_path / "s.db"
    port = free_port()
    out = subprocess.run([*RAREBIRD, "detect", "--store", str(store), "--quiet", "--format",
                          "json", "--output", f"syslog+tcp://127.0.0.1:{port}", str(events)],
                         capture_output=True, text=True, env=serve_env(), timeout=120)  # fmt: skip
    made = json.loads(out.stdout) if out.stdout.strip() else []
    assert made, out.stderr
    assert out.returncode == 0
    assert f"{len(made)} alert(s) for syslog+tcp://127.0.0.1:{port} could not be delivered" in (
        out.stderr
    )
    listener = socket.socket()
    listener.bind(("127.0.0.1", port))
    listener.listen(1)
    got = b""

    def take() -> None:
        nonlocal got
        conn, _ = listener.accept()
        with conn:
            while data := conn.recv(65536):
                got += data

    t = threading.Thread(target=take)
    t.start()
    out = subprocess.run([*RAREBIRD, "outputs", "replay", "--store", str(store)],
                         capture_output=True, text=True, env=serve_env(), timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    t.join(10)
    listener.close()
    assert sorted(a["kibana.alert.uuid"] for a in made) == sorted(
        m.split(b'id="', 1)[1].split(b'"', 1)[0].decode() for m in got.split(b"<")[1:]
    )


def test_detect_appends_what_an_output_refused_to_the_dead_letter_file(tmp_path: Path) -> None:
    """``--dead-letter PATH``: the alerts a webhook refused for good (HTTP 400) are appended to
    PATH as JSON lines, beside the store's dead letters; a second run appends only its own
    (none). Without ``--output`` the option is a usage error."""
    events = write_ndjson(tmp_path / "events.ndjson", scenario_events())
    letters = tmp_path / "dead.ndjson"
    receiver = Receiver().start()
    try:
        receiver.script = [400]  # the scenario's one alert is refused
        out = subprocess.run([*RAREBIRD, "detect", "--store", str(tmp_path / "s.db"), "--quiet",
                              "--format", "json", "--output", receiver.url, "--dead-letter",
                              str(letters), str(events)],
                             capture_output=True, text=True, env=serve_env(), timeout=120)  # fmt: skip
        assert out.returncode == 0, out.stderr
        (made,) = [a["kibana.alert.uuid"] for a in json.loads(out.stdout)]
        (line,) = [json.loads(x) for x in letters.read_text().splitlines()]
        assert line["output"] == receiver.url
        assert line["error"] == f"{receiver.url}: HTTP 400"
        assert line["attempts"] == 1
        assert line["alert_id"] == line["alert"]["kibana.alert.uuid"] == made
        assert receiver.ids() == []
        with open_store(str(tmp_path / "s.db")) as store:
            assert [d.alert.id for d in dead_letters(store)] == [made]
        # a second run with nothing new refused appends nothing
        again = subprocess.run([*RAREBIRD, "detect", "--store", str(tmp_path / "s.db"), "--quiet",
                                "--output", receiver.url, "--dead-letter", str(letters),
                                str(events)],
                               capture_output=True, text=True, env=serve_env(), timeout=120)  # fmt: skip
        assert again.returncode == 0, again.stderr
        assert len(letters.read_text().splitlines()) == 1
    finally:
        receiver.stop()
    lone = subprocess.run([*RAREBIRD, "detect", "--store", str(tmp_path / "t.db"), "--dead-letter",
                           str(letters), str(events)],
                          capture_output=True, text=True, env=serve_env(), timeout=60)  # fmt: skip
    assert lone.returncode == 2
    assert "--dead-letter goes with --output" in lone.stderr
    assert not (tmp_path / "t.db").exists()
