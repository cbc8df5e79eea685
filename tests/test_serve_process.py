"""The real ``rarebird serve`` process, as an operator runs it: events appended to a tailed file,
the file rotated (while the service runs, and while it is down), the service killed with
SIGKILL 20 times at random moments (``RAREBIRD_KILL_SEED``) -- catching up, live, in a rule run,
a delivery to a real webhook receiver, a snapshot -- and restarted; in the end exactly the
alerts an uninterrupted replay of the same events (``rarebird detect`` over the rotated files)
gives, each once, and each delivered to every output (exactly once after de-duplication by id).

Timing: 5-second buckets, query_delay 1s, the rule every 2s looking back 8s (see
``tests/serve_support.py``); about a minute in all.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.serve_support import (
    RAREBIRD,
    SPAN,
    aligned,
    detect_alerts,
    event,
    history,
    log_events,
    query,
    serve_env,
    start_serve,
    stop_serve,
    stored_alerts,
    wait_for,
    write_definitions,
    write_lines,
)


def rotate(live: Path) -> None:
    """logrotate's default (create) mode: .1 -> .2, the live file -> .1, a new file later."""
    one = live.with_name(live.name + ".1")
    if one.exists():
        os.rename(one, live.with_name(live.name + ".2"))
    os.rename(live, one)


class HookReceiver:
    """A real webhook receiver on loopback that records every delivery (duplicates too)."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.ids.append(json.loads(body)["kibana.alert.uuid"])
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


#: SIGKILLs of the running service, at random moments of its life (12 keep the suite under its
#: ten minutes; RAREBIRD_KILLS=50 with RAREBIRD_KILL_SEED varied for a longer hunt)
KILLS = int(os.environ.get("RAREBIRD_KILLS", "12"))


@pytest.mark.slow
def test_kill_9_at_random_moments_gives_exactly_the_alerts_of_an_uninterrupted_replay(
    tmp_path: Path,
) -> None:
    defs = write_definitions(tmp_path / "defs")
    logs = tmp_path / "logs"
    logs.mkdir()
    live = logs / "events.ndjson"
    write_lines(live, history(datetime.now(UTC), buckets=300), "w")
    store = tmp_path / "serve.db"
    sink = tmp_path / "alerts.ndjson"
    err = tmp_path / "serve.log"
    hook = HookReceiver()
    config = tmp_path / "rarebird.toml"
    config.write_text(
        f'store = "{store}"\n[definitions]\njob = "{defs.job}"\ndatafeed = "{defs.datafeed}"\n'
        f'rule = "{defs.rule}"\n[[follow]]\npath = "{live}"\n[backfill]\nalerts = true\n'
        f'[snapshots]\ninterval = "10s"\n[alerts]\noutputs = ["ndjson:{sink}", '
        f'"http://127.0.0.1:{hook.port}/hook"]\n[service]\npoll_interval = "100ms"\n'
    )
    args = ["--config", str(config)]

    # every kill comes at a random moment after a (re)start: some while catching up, some live,
    # in a rule run, a delivery or a snapshot
    rng = random.Random(int(os.environ.get("RAREBIRD_KILL_SEED", "20261128")))
    proc: subprocess.Popen[bytes] | None = start_serve(args, err)
    starts = 1
    lifetimes = [0]  # where each lifetime's log starts
    # the first kill lands while the service catches up on the history: as soon as it says it
    # started (a random moment could fall after the catch-up once start-up is fast)
    wait_for(lambda: b'"event":"started"' in err.read_bytes().replace(b" ", b""), timeout=60,
             step=0.005, what="serve to start")  # fmt: skip
    kill_at = time.monotonic()
    t0 = time.monotonic()
    down_until = 0.0
    killed = rotations = 0
    killed_catching_up = killed_live = 0
    rotate_alive_after = min(rng.randint(5, 15), KILLS - 1)
    rotated_alive = False
    tick = 0
    seen_buckets: set[int] = set()
    last_ts = datetime.now(UTC)
    while killed < KILLS or time.monotonic() - t0 < 12:
        now = datetime.now(UTC)
        bucket = int(now.timestamp()) // SPAN
        docs = [event(now, "monitor")]
        if bucket not in seen_buckets:
            seen_buckets.add(bucket)
            if bucket % 4 == 0:
                docs.append(event(now, "nagios", proc="netstat"))
            if bucket % 7 == 0:
                docs.append(event(now, "backup", host="db-1"))
        if tick % 10 == 5:
            docs.append(event(now, f"intruder{tick}", host="web-2"))
        write_lines(live, docs)
        last_ts = now
        mono = time.monotonic()
        if proc is None and mono >= down_until:
            lifetimes.append(err.stat().st_size)
            proc = start_serve(args, err)
            starts += 1
            kill_at = mono + rng.uniform(0.3, 2.5)
        if killed < KILLS and proc is not None and mono >= kill_at:
            proc.kill()  # SIGKILL: no chance to commit anything
            proc.wait()
            proc = None
            killed += 1
            tail = err.read_bytes()[lifetimes[-1] :].decode(errors="replace")
            if '"event":"live"' in tail.replace(" ", ""):
                killed_live += 1
            else:
                killed_catching_up += 1
            down_until = time.monotonic() + rng.uniform(0.1, 0.8)
            if killed == 2:
                rotate(live)  # rotated while the service is down
                rotations += 1
        if not rotated_alive and proc is not None and killed >= rotate_alive_after:
            rotate(live)
            rotations += 1
            rotated_alive = True
        tick += 1
        time.sleep(0.25)
    if proc is None:
        proc = start_serve(args, err)
        starts += 1

    # the last bucket is seen by a rule run once that run's range has gone past it
    last_bucket_ms = int(aligned(last_ts).timestamp() * 1000)

    def done() -> bool:
        rows = query(store, "SELECT max(started_ms) FROM rule_runs")
        return bool(rows and rows[0][0] and rows[0][0] > last_bucket_ms + 8000 + SPAN * 1000)

    wait_for(done, timeout=60, what="the rule runs past the last bucket")
    # drained: a real answer of 0 (a busy store answers nothing, which is not "empty")
    wait_for(lambda: query(store, "SELECT count(*) FROM serve_outbox") == [(0,)], timeout=30,
             what="the outbox to drain")  # fmt: skip
    assert stop_serve(proc) == 0
    hook.close()

    assert killed == KILLS
    assert killed_catching_up >= 1
    assert killed_live >= 1
    assert rotations == 2
    assert starts == KILLS + 1
    assert len(log_events(err, "model_snapshot")) >= 1
    inputs = [p for p in (logs / "events.ndjson.2", logs / "events.ndjson.1", live) if p.exists()]
    assert len(inputs) == 3
    reference = detect_alerts(defs, inputs, tmp_path / "reference.db")
    got = stored_alerts(store)
    assert len(reference) >= 2, "the scenario must produce alerts to compare"
    assert sorted(got) == sorted(reference)
    assert got == reference  # the same documents, execution times included
    users = [a["user"]["name"][0] + "@" + a["kibana.alert.original_time"] for a in got.values()]
    assert len(users) == len(set(users))  # one alert per anomaly
    # every output got every alert: exactly once after de-duplication by id, and at most one
    # batch again per kill (at-least-once: a kill between a delivery and its cursor commit)
    delivered = [json.loads(x)["kibana.alert.uuid"] for x in sink.read_text().splitlines()]
    for ids in (delivered, hook.ids):
        assert set(ids) == set(reference)
        assert len(ids) - len(set(ids)) <= KILLS


@pytest.mark.slow
def test_sigterm_finishes_the_commit_and_exits_0(tmp_path: Path) -> None:
    defs = write_definitions(tmp_path / "defs")
    live = tmp_path / "events.ndjson"
    now = datetime.now(UTC)
    write_lines(live, history(now, buckets=40), "w")
    store = tmp_path / "serve.db"
    err = tmp_path / "serve.log"
    proc = start_serve(["--store", str(store), *defs.flags(), "--follow", str(live),
                        "--poll-interval", "100ms"], err)  # fmt: skip
    wait_for(lambda: log_events(err, "live"), timeout=30, what="live")
    write_lines(live, [event(datetime.now(UTC), "monitor")])
    time.sleep(0.5)
    assert stop_serve(proc) == 0
    stopped = log_events(err, "stopped")
    assert len(stopped) == 1
    # everything read was committed: the input position is the end of the file
    state = json.loads(query(store, "SELECT state FROM serve_state")[0][0])
    position = state["sources"][str(live)]["current"]
    assert position["offset"] == live.stat().st_size
    assert position["ino"] == live.stat().st_ino
    # a final snapshot, as Elastic persists the model state when a job closes
    snaps = query(store, "SELECT description FROM model_snapshots")
    assert [d.startswith("State persisted due to job close at ") for (d,) in snaps] == [True]
    # and every log line is one JSON object with a level and an event
    for raw in err.read_text().splitlines():
        doc = json.loads(raw)
        assert {"@timestamp", "level", "event"} <= set(doc)
    assert datetime.fromisoformat(
        stopped[0]["@timestamp"].replace("Z", "+00:00")
    ) > now - timedelta(seconds=1)


@pytest.mark.slow
def test_standard_input_is_followed_until_it_ends(tmp_path: Path) -> None:
    defs = write_definitions(tmp_path / "defs")
    store = tmp_path / "serve.db"
    err = tmp_path / "serve.log"
    docs = history(datetime.now(UTC) - timedelta(seconds=10), buckets=60)
    with open(err, "wb") as log:
        proc = subprocess.Popen(
            [*RAREBIRD, "serve", "--store", str(store), *defs.flags(), "--follow", "-",
             "--poll-interval", "100ms"],
            stdin=subprocess.PIPE, stderr=log, stdout=subprocess.DEVNULL, env=serve_env(),
        )  # fmt: skip
    assert proc.stdin is not None
    proc.stdin.write("".join(json.dumps(d) + "\n" for d in docs).encode())
    proc.stdin.flush()

    def processed() -> int:
        rows = query(store, "SELECT state FROM job_state")
        return int(json.loads(rows[0][0])["stats"]["processed_record_count"]) if rows else 0

    wait_for(lambda: processed() == len(docs), timeout=30, what="stdin events modelled")
    proc.stdin.close()
    wait_for(lambda: log_events(err, "stream_ended"), timeout=10, what="end of stdin")
    assert log_events(err, "stream_ended")[0]["lines"] == len(docs)
    assert stop_serve(proc) == 0
