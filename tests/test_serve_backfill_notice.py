"""``serve`` on data older than its backfill window models nothing; it must say so -- in its log
and in ``status`` -- with the count, the window and what to change, instead of staying silent."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.serve_support import (
    history,
    log_events,
    serve_env,
    start_serve,
    stop_serve,
    wait_for,
    write_lines,
)


def test_events_older_than_the_backfill_window_are_reported(tmp_path: Path) -> None:
    old_end = datetime.now(UTC) - timedelta(days=40)
    live = tmp_path / "events.ndjson"
    docs = history(old_end, buckets=20)
    write_lines(live, docs, "w")
    store = tmp_path / "serve.db"
    err = tmp_path / "serve.log"
    proc = start_serve(["--store", str(store), "--follow", str(live), "--poll-interval", "100ms"],
                       err)  # fmt: skip
    wait_for(lambda: log_events(err, "live"), timeout=60, what="live")
    assert stop_serve(proc) == 0
    (warning,) = log_events(err, "older_than_backfill")
    matched = sum(
        1 for d in docs if d["process"]["name"] in ("ss", "netstat", "route", "showmount")
    )
    assert warning["events"] == matched
    assert warning["level"] == "warning"
    assert "--backfill-max-age" in warning["message"]
    status = subprocess.run([sys.executable, "-m", "rarebird", "status", "--store", str(store)],
                            capture_output=True, text=True, env=serve_env(), check=False)  # fmt: skip
    assert status.returncode == 0, status.stderr
    assert f"Not modelled: {matched:,} events older than the backfill window" in status.stdout
    assert "processed_record_count            -" in status.stdout  # nothing modelled
