"""The real ``rarebird serve`` process, as an operator runs it: events appended to a tailed file,
the file rotated (while the service runs, and while it is down), the service killed with
SIGKILL at random moments and restarted -- and in the end exactly the alerts an uninterrupted
replay of the same events (``rarebird detect`` over the rotated files) gives, each once.

Timing: 5-second buckets, query_delay 1s, the rule every 2s looking back 8s (see
``tests/serve_support.py``); about 45 seconds in all.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from datetime import UTC, datetime, timedelta
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
    args = ["--store", str(store), *defs.flags(), "--follow", str(live), "--backfill-alerts",
            "--output", f"ndjson:{sink}", "--poll-interval", "100ms"]  # fmt: skip

    rng = random.Random(int(os.environ.get("RAREBIRD_KILL_SEED", "20261128")))
    duration = 30.0
    kills = sorted(rng.uniform(2.0, duration - 3.0) for _ in range(4))
    rotate_alive_at = rng.uniform(4.0, duration - 4.0)
    proc = start_serve(args, err)
    starts = 1
    t0 = time.monotonic()
    down_until = 0.0
    killed = rotations = 0
    rotated_alive = False
    tick = 0
    seen_buckets: set[int] = set()
    last_ts = datetime.now(UTC)
    while (elapsed := time.monotonic() - t0) < duration:
        now = datetime.now(UTC)
        bucket = int(now.timestamp()) // SPAN
        docs = [event(now, "monitor")]
        if bucket not in seen_buckets:
            seen_buckets.add(bucket)
            if bucket % 4 == 0:
                docs.append(event(now, "nagios", proc="netstat"))
            if bucket % 7 == 0:
                docs.append(event(now, "backup", host="db-1"))
        if tick % 14 == 7:
            docs.append(event(now, f"intruder{tick}", host="web-2"))
        write_lines(live, docs)
        last_ts = now
        if proc is None and time.monotonic() >= down_until:
            proc = start_serve(args, err)
            starts += 1
        if killed < len(kills) and elapsed >= kills[killed] and proc is not None:
            proc.kill()  # SIGKILL: no chance to commit anything
            proc.wait()
            proc = None
            killed += 1
            down_until = time.monotonic() + rng.uniform(0.3, 1.5)
            if killed == 2:
                rotate(live)  # rotated while the service is down
                rotations += 1
        if not rotated_alive and proc is not None and elapsed >= rotate_alive_at:
            rotate(live)
            rotations += 1
            rotated_alive = True
        tick += 1
        time.sleep(0.5)
    if proc is None:
        proc = start_serve(args, err)
        starts += 1

    # the last bucket is seen by a rule run once that run's range has gone past it
    last_bucket_ms = int(aligned(last_ts).timestamp() * 1000)

    def done() -> bool:
        rows = query(store, "SELECT max(started_ms) FROM rule_runs")
        return bool(rows and rows[0][0] and rows[0][0] > last_bucket_ms + 8000 + SPAN * 1000)

    wait_for(done, timeout=40, what="the rule runs past the last bucket")
    assert stop_serve(proc) == 0

    assert killed == 4
    assert rotations == 2
    assert starts == 5  # (a kill may come before a process has even logged "started")
    assert 1 <= len(log_events(err, "started")) <= 5
    inputs = [p for p in (logs / "events.ndjson.2", logs / "events.ndjson.1", live) if p.exists()]
    assert len(inputs) == 3
    reference = detect_alerts(defs, inputs, tmp_path / "reference.db")
    got = stored_alerts(store)
    assert len(reference) >= 2, "the scenario must produce alerts to compare"
    assert sorted(got) == sorted(reference)
    assert got == reference  # the same documents, execution times included
    users = [a["user"]["name"][0] + "@" + a["kibana.alert.original_time"] for a in got.values()]
    assert len(users) == len(set(users))  # one alert per anomaly
    # the ndjson output got every alert (at least once: delivery is at-least-once)
    delivered = {json.loads(x)["kibana.alert.uuid"] for x in sink.read_text().splitlines()}
    assert delivered == set(reference)


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
