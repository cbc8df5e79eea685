"""Event time sanity: one event dated 2100 (or 1970) in real data is quarantined -- counted,
reported with file:line, never modelled -- by ``job run``, ``detect`` and ``serve`` alike, and
the job's clock never moves to it (before: 2.57 million empty buckets and every later real
event dropped as out of order)."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rarebird.clock import FixedClock
from rarebird.datafeed.feed import TimeLimits
from rarebird.definitions import load_datafeed, load_job
from rarebird.run.engine import Engine
from rarebird.sources.ecs import event_from_document
from rarebird.store import open_store
from tests.serve_support import RAREBIRD, event, query, serve_env, wait_for, write_lines
from tests.test_ingest import Served, ndjson, serve_http

START = datetime(2026, 3, 1, tzinfo=UTC)


def damaged_input(path: Path) -> Path:
    docs = [event(START + timedelta(minutes=i), f"user{i % 7}") for i in range(60)]
    docs.insert(20, event(datetime(2100, 1, 1, tzinfo=UTC), "time-traveller"))
    docs.insert(40, event(datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC), "epoch-zero"))
    write_lines(path, docs, "w")
    return path


@pytest.mark.parametrize("command", ["job run", "detect"])
def test_replays_quarantine_implausible_times(tmp_path: Path, command: str) -> None:
    events = damaged_input(tmp_path / "events.ndjson")
    store = tmp_path / "s.db"
    out = subprocess.run([*RAREBIRD, *command.split(), "--store", str(store), str(events)],
                         capture_output=True, text=True, env=serve_env(), timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    stats = json.loads(query(store, "SELECT state FROM job_state")[0][0])["stats"]
    assert stats["processed_record_count"] == 60  # every real event, none dropped
    assert stats["out_of_order_timestamp_count"] == 0
    assert stats["bucket_count"] <= 5  # an hour of 15-minute buckets, not 2.57 million
    assert "1 event(s) dated more than 1 day, 0:00:00 after " in out.stderr
    assert "1 event(s) dated before 1990-01-01T00:00:00.000Z were quarantined" in out.stderr
    assert f"{events}:21: 2100-01-01T00:00:00.000Z (dated in the future)" in out.stderr
    assert f"{events}:41: 1970-01-01T00:00:01.000Z (dated before min time)" in out.stderr


@pytest.mark.parametrize("command", ["job run", "detect"])
def test_max_future_on_the_command_line(tmp_path: Path, command: str) -> None:
    """``--max-future`` as serve's ``max_future``: a host whose clock runs three days ahead is
    quarantined by default and modelled when the limit is raised; a bad value is a usage
    error naming the option."""
    now = datetime.now(UTC).replace(microsecond=0)
    docs = [event(now - timedelta(hours=2) + timedelta(minutes=i), "alice") for i in range(30)]
    docs.append(event(now + timedelta(days=3), "ahead"))
    events = tmp_path / "events.ndjson"
    write_lines(events, docs, "w")

    def run(store: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*RAREBIRD, *command.split(), "--store", str(tmp_path / store),
                               *extra, str(events)], capture_output=True, text=True,
                              env=serve_env(), timeout=60)  # fmt: skip

    default = run("a.db")
    assert default.returncode == 0, default.stderr
    assert "1 event(s) dated more than 1 day, 0:00:00 after " in default.stderr
    stats = json.loads(query(tmp_path / "a.db", "SELECT state FROM job_state")[0][0])["stats"]
    assert stats["processed_record_count"] == 30
    raised = run("b.db", "--max-future", "4d")
    assert raised.returncode == 0, raised.stderr
    assert "quarantined" not in raised.stderr
    stats = json.loads(query(tmp_path / "b.db", "SELECT state FROM job_state")[0][0])["stats"]
    assert stats["processed_record_count"] == 31
    bad = run("c.db", "--max-future", "soon")
    assert bad.returncode == 2
    assert "Invalid value for '--max-future': not a duration" in bad.stderr
    assert not (tmp_path / "c.db").exists()


def test_the_limit_is_configurable() -> None:
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    evs = [event_from_document(event(now + timedelta(hours=h), "a")) for h in (-1, 2, 30)]

    def replayed(limits: TimeLimits | None) -> tuple[int, dict[str, int]]:
        with open_store(":memory:") as store:
            engine = Engine(store, load_job(), load_datafeed(), clock=FixedClock(now),
                            time_limits=limits)  # fmt: skip
            report = engine.replay(evs)
        assert report.quarantine is not None
        return report.events, dict(report.quarantine.counts)

    assert replayed(None) == (2, {"dated_in_the_future": 1})
    assert replayed(TimeLimits(max_future=timedelta(hours=1))) == (1, {"dated_in_the_future": 2})


def test_serve_quarantines_an_http_batch_event_from_2100(tmp_path: Path) -> None:
    gen = serve_http(tmp_path)
    served: Served = next(gen)
    try:
        now = datetime.now(UTC)
        docs = [event(now, "alice"), event(datetime(2100, 1, 1, tzinfo=UTC), "bob")]
        status, doc = served.ingest(ndjson(docs))
        assert (status, doc["kept"], doc["quarantined"]) == (200, 1, 1)
        (line,) = served.log.events("events_quarantined")
        assert (line["source"], line["count"]) == ("http", 1)
        text = served.request("GET", "/metrics")[2].decode()
        assert 'rarebird_events_dropped_total{reason="implausible_time"} 1' in text

        def frontier() -> str | None:
            rows = query(served.store, "SELECT state FROM serve_state")
            return json.loads(rows[0][0]).get("frontier_ms") if rows else None

        wait_for(frontier, 10, what="a frontier")
        assert int(str(frontier())) < int((now + timedelta(minutes=1)).timestamp() * 1000)
    finally:
        gen.close()
