"""Helpers for the ``rarebird serve`` tests: fast definitions (5-second buckets), events, and
running the real ``rarebird serve`` process.

The definitions are the packaged job, datafeed and rule with only their timing changed:
``bucket_span`` 5s, ``query_delay`` 1s, ``frequency`` 1s, rule ``interval`` 2s and ``from``
now-8s (a bucket is final 1 s after it ends and is inside exactly the next run's range).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rarebird.definitions import packaged_path

JOB_ID = "fast_discovery"
SPAN = 5
ROOT = Path(__file__).resolve().parent.parent
RAREBIRD = [sys.executable, "-m", "rarebird"]


@dataclass(frozen=True)
class Definitions:
    job: Path
    datafeed: Path
    rule: Path

    def flags(self) -> list[str]:
        return ["--job", str(self.job), "--datafeed", str(self.datafeed), "--rule", str(self.rule)]


def write_definitions(
    folder: Path,
    *,
    query_delay: str = "1s",
    frequency: str = "1s",
    interval: str = "2s",
    lookback: str = "now-8s",
    threshold: int | None = None,
) -> Definitions:
    folder.mkdir(parents=True, exist_ok=True)
    job = json.loads(Path(packaged_path("v3_linux_network_connection_discovery.json")).read_text())
    job["job_id"] = JOB_ID
    job["analysis_config"]["bucket_span"] = f"{SPAN}s"
    datafeed = json.loads(
        Path(packaged_path("datafeed_v3_linux_network_connection_discovery.json")).read_text()
    )
    datafeed["job_id"] = JOB_ID
    datafeed["query_delay"] = query_delay
    datafeed["frequency"] = frequency
    rule = Path(
        packaged_path("discovery_ml_linux_system_network_connection_discovery.toml")
    ).read_text()
    rule = rule.replace('from = "now-45m"', f'from = "{lookback}"')
    rule = rule.replace('interval = "15m"', f'interval = "{interval}"')
    rule = rule.replace('["v3_linux_network_connection_discovery"]', f'["{JOB_ID}"]')
    if threshold is not None:
        rule = rule.replace("anomaly_threshold = 25", f"anomaly_threshold = {threshold}")
    defs = Definitions(folder / "job.json", folder / "datafeed.json", folder / "rule.toml")
    defs.job.write_text(json.dumps(job))
    defs.datafeed.write_text(json.dumps(datafeed))
    defs.rule.write_text(rule)
    return defs


def event(when: datetime, user: str, host: str = "web-1", proc: str = "ss") -> dict[str, Any]:
    return {
        "@timestamp": when.astimezone(UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "event": {"kind": "event", "category": ["process"], "type": ["start"]},
        "user": {"name": user},
        "host": {"name": host, "os": {"type": "linux"}},
        "process": {"name": proc, "args": [proc, "-tunap"], "parent": {"name": "bash"}},
    }


def line(doc: dict[str, Any]) -> str:
    return json.dumps(doc) + "\n"


def routine(bucket_start: datetime, b: int) -> list[dict[str, Any]]:
    """The regular users of bucket number ``b``: monitor in every bucket, nagios every 4th,
    backup every 7th (as the detect tests' scenario, in 5-second buckets)."""
    out = [event(bucket_start + timedelta(seconds=1), "monitor")]
    if b % 4 == 0:
        out.append(event(bucket_start + timedelta(seconds=2), "nagios", proc="netstat"))
    if b % 7 == 0:
        out.append(event(bucket_start + timedelta(seconds=3), "backup", host="db-1"))
    return out


def history(end: datetime, buckets: int = 300) -> list[dict[str, Any]]:
    """``buckets`` buckets of routine activity ending at (the bucket of) ``end``."""
    last = aligned(end)
    out: list[dict[str, Any]] = []
    for i in range(buckets):
        start = last - timedelta(seconds=SPAN * (buckets - i))
        out.extend(routine(start, i))
    out.sort(key=lambda d: str(d["@timestamp"]))
    return out


def aligned(when: datetime) -> datetime:
    epoch = int(when.timestamp())
    return datetime.fromtimestamp(epoch - epoch % SPAN, UTC)


def write_lines(path: Path, docs: list[dict[str, Any]], mode: str = "a") -> None:
    with open(path, mode, encoding="utf-8") as f:
        f.write("".join(line(d) for d in docs))


# --- the real process -------------------------------------------------------------------------


def serve_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env


def start_serve(args: list[str], log: Path, **kw: Any) -> subprocess.Popen[bytes]:
    with open(log, "ab") as err:
        return subprocess.Popen(
            [*RAREBIRD, "serve", *args], stdout=subprocess.DEVNULL, stderr=err,
            env=serve_env(), cwd=str(log.parent), **kw,
        )  # fmt: skip


def stop_serve(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=timeout)


def log_events(log: Path, name: str) -> list[dict[str, Any]]:
    out = []
    for raw in log.read_text(encoding="utf-8").splitlines():
        try:
            doc = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if doc.get("event") == name:
            out.append(doc)
    return out


def wait_for(predicate: Any, timeout: float, step: float = 0.1, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")


def query(store: Path, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read the store as another process would (the service may be writing)."""
    if not store.exists():
        return []
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=10)
    try:
        return list(conn.execute(sql, args))
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def stored_alerts(store: Path) -> dict[str, dict[str, Any]]:
    return {aid: json.loads(doc) for aid, doc in query(store, "SELECT id, doc FROM alerts")}


def detect_alerts(defs: Definitions, inputs: list[Path], store: Path) -> dict[str, dict[str, Any]]:
    """The uninterrupted replay: ``rarebird detect`` over the same events, alerts by id."""
    out = subprocess.run(
        [*RAREBIRD, "detect", "--store", str(store), *defs.flags(), "--format", "json",
         "--quiet", *map(str, inputs)],
        capture_output=True, env=serve_env(), check=True, timeout=120,
    )  # fmt: skip
    return {a["kibana.alert.uuid"]: a for a in json.loads(out.stdout)}


# --- in process, on a clock the test drives ---------------------------------------------------


class Recorder:
    """A structured log that keeps the lines (level, event, fields)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def __call__(self, level: str, event: str, **fields: Any) -> None:
        self.lines.append((level, event, fields))

    def events(self, name: str) -> list[dict[str, Any]]:
        return [f for _, e, f in self.lines if e == name]


def in_process(
    tmp_path: Path,
    clock: Any,
    follow: list[Path],
    defs: Definitions | None = None,
    **changes: Any,
) -> tuple[Any, Recorder]:
    """An opened :class:`~rarebird.serve.service.Service` on ``clock``, logging to a recorder."""
    from dataclasses import replace

    from rarebird.definitions.service import FollowConfig, ServeConfig
    from rarebird.serve.service import Service

    defs = defs or write_definitions(tmp_path / "defs")
    cfg = ServeConfig(
        store=str(tmp_path / "serve.db"), job=str(defs.job), datafeed=str(defs.datafeed),
        rule=str(defs.rule), follow=tuple(FollowConfig(path=str(p)) for p in follow),
    )  # fmt: skip
    cfg = replace(cfg, **changes)
    log = Recorder()
    service = Service(cfg, clock=clock, log=log)
    service.open()
    return service, log


def turn(service: Any, clock: Any, seconds: float = 0.0, times: int = 1) -> None:
    """Advance the clock and turn the service loop."""
    from datetime import timedelta as _td

    for _ in range(times):
        if seconds:
            clock.advance(_td(seconds=seconds))
        while service.run_once():
            pass
