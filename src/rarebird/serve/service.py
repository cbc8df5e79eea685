"""``rarebird serve``: the detection running continuously, as the rule runs in production.

One thread (the *service loop*) does everything that changes the store; the HTTP server only
parses and waits, and the outputs are fed by a delivery thread. Each turn of the loop
(:meth:`Service.run_once`):

1. reads new data from the followed inputs and takes the ingest batches waiting;
2. parses it (:mod:`rarebird.sources.chunks`) and gives the events to the
   :class:`~rarebird.run.live.LiveEngine`, which keeps those the datafeed query matches until
   the datafeed frontier passes them;
3. moves the frontier (making the rule runs due on the way) and, with ``alert_on_interim``,
   scores the users just seen for an early warning;
4. commits all of it in **one transaction**: input positions, pending events, job results and
   state, rule runs, alerts, late counts, the service state;
5. then answers the ingest batches, hands new alerts to the outputs (from the committed
   outbox: at-least-once), and updates the metrics.

**Catching up, then live.** At start every file is read to its end before the service goes
live (on a first start with backfill that is the history the inputs hold, up to
``backfill.max_age``; after a restart, what was written since the last commit). While catching
up, the frontier follows the data -- it is the oldest "newest event" among the files still
being read, so the files are merged in time order, reading next from the one furthest behind --
and never passes ``now - query_delay``. Once live, the frontier moves on the wall clock, at every
``frequency`` tick (and at every rule run), to ``now - query_delay``, as Elastic's datafeed does.
Progress of the catch-up is logged (``backfill_progress``).

**Gaps**: :mod:`rarebird.serve.quiet`.
**Stopping.** SIGTERM (or SIGINT) stops the loop after the turn in progress; the HTTP server
stops accepting; the batches already taken are committed and answered; a last model snapshot is
taken; the exit code is 0. ``kill -9`` at any moment loses nothing that was committed, and the
rest is read again (files) or sent again (HTTP clients get no answer for an uncommitted batch).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

from starlette.routing import BaseRoute

from rarebird.alerts.model import Alert, RuleIdentity
from rarebird.clock import SYSTEM_CLOCK, Clock
from rarebird.datafeed.feed import TimeLimits
from rarebird.definitions import load_datafeed, load_job, load_rule
from rarebird.definitions.service import ServeConfig
from rarebird.errors import InputError
from rarebird.rules.profile import profile_for
from rarebird.run.delivery import RetryPolicy
from rarebird.run.live import LiveEngine, StepReport, frontier_target
from rarebird.serve.delivery_worker import DeliveryWorker
from rarebird.serve.elastic_input import is_elastic_spec, open_elastic_input, start_for
from rarebird.serve.http_app import ACCEPTED, BUSY, STOPPING
from rarebird.serve.http_server import HttpServer, open_http
from rarebird.serve.ingest import Batch, take_batch
from rarebird.serve.inputs import FollowedInput, open_input
from rarebird.serve.lock import ServeLock
from rarebird.serve.log import JsonLog
from rarebird.serve.metrics import ServeMetrics
from rarebird.serve.quiet import QuietSources
from rarebird.serve.reporting import (
    count_outcome,
    count_parsed,
    engine_metrics,
    engine_status,
    log_quarantine,
    older_than_backfill,
    report_memory,
    report_turn,
)
from rarebird.sinks import Sink, open_sink
from rarebird.sinks.webhook import auth_headers
from rarebird.sources import KEEP_ALL, load_builtin_formats
from rarebird.store import Store, open_store
from rarebird.store.serve import (
    record_gap,
)
from rarebird.timeutil import from_epoch_ms, iso, to_epoch_ms

#: bytes read from one file per turn while catching up, and while live
CATCHUP_BUDGET = 4 * 1024 * 1024
LIVE_BUDGET = 1024 * 1024
PROGRESS_EVERY = 2.0


class Service:
    """The running service. ``open()``, then ``run(stop)`` (or ``run_once()`` in tests)."""

    def __init__(
        self,
        config: ServeConfig,
        *,
        clock: Clock = SYSTEM_CLOCK,
        log: Callable[..., None] | None = None,
        http_routes: Sequence[BaseRoute] = (),
    ) -> None:
        self.config = config
        #: more routes on the HTTP listener (the triage pages, mounted by the CLI)
        self.http_routes = tuple(http_routes)
        self.clock = clock
        self.log: Callable[..., None] = log or JsonLog(level=config.log_level, clock=clock)
        self.metrics = ServeMetrics()
        self.store: Store | None = None
        self.engine: LiveEngine | None = None
        self.inputs: dict[str, FollowedInput] = {}
        self.delivery: DeliveryWorker | None = None
        self.http: HttpServer | None = None
        self._lock = ServeLock(config.store)
        self._queue: queue.Queue[Batch] = queue.Queue(maxsize=config.http.max_queued_batches)
        self._wake = threading.Event()
        self._accepting = False
        self._status_lock = threading.Lock()
        self._status: dict[str, Any] = {}
        self._heartbeat = 0.0
        self._live = False
        self._catchup_started: float | None = None
        self._catchup_total = 0
        self._catchup_read = 0
        self._catchup_kept = 0
        self._older_at_start = 0
        self._last_progress = 0.0
        self._memory_status = "ok"
        #: bytes read from one file per turn while catching up
        self.catchup_budget = CATCHUP_BUDGET
        self.quiet = QuietSources(clock, self.metrics, self.log, self._gap)

    # --- start ----------------------------------------------------------------------------

    def open(self) -> None:
        cfg = self.config
        load_builtin_formats()
        job = load_job(cfg.job)
        datafeed = load_datafeed(cfg.datafeed)
        rule = load_rule(cfg.rule)
        self._lock.acquire()
        try:
            self.store = open_store(cfg.store)
            identity = RuleIdentity.for_rule(
                rule, rule_uuid=cfg.alerts.rule_uuid, space_id=cfg.alerts.space,
                kibana_base_url=cfg.alerts.kibana_url, anomaly_index=cfg.alerts.anomaly_index,
                kibana_version=cfg.alerts.kibana_version,
            )  # fmt: skip
            profile = profile_for(cfg.alerts.profile, job.job_id, job.bucket_span_s,
                                  job.detector.by_field_name, cfg.alerts.quiet)  # fmt: skip
            self.engine = LiveEngine(
                self.store, job, datafeed, rule, clock=self.clock, identity=identity,
                profile=profile,
                backfill=cfg.backfill, snapshots=cfg.snapshots,
                alert_on_interim=cfg.alerts.alert_on_interim, keep_outbox=bool(cfg.alerts.outputs),
                log=self.log, time_limits=TimeLimits(max_future=cfg.max_future),
            )  # fmt: skip
            engine = self.engine
            self._older_at_start = engine.state.older_than_backfill
            for fc in cfg.follow:
                saved = engine.state.sources.get(fc.label)
                backfill = engine.first_start and self.config.backfill.enabled
                # -- an Elasticsearch index pattern (es+https://...): searched, not tailed -----
                if is_elastic_spec(fc.path):
                    start = start_for(to_epoch_ms(self.clock.now()), engine.qd_ms,
                                      engine.state.backfill_from_ms, backfill)  # fmt: skip
                    self.inputs[fc.label] = open_elastic_input(
                        fc, job, datafeed, saved, start_ms=start, clock=self.clock, log=self.log
                    )
                    self.quiet.watch(fc.label)
                    continue
                # -- end of Elasticsearch inputs ------------------------------------------------
                self.inputs[fc.label] = open_input(
                    fc, datafeed.query.prefilter if profile is None else KEEP_ALL, saved,
                    backfill=backfill,
                    rotate_grace=self.config.rotate_grace, log=self.log,
                )  # fmt: skip
                self.quiet.watch(fc.label)
            self.log("info", "started", job_id=job.job_id, rule=rule.name,
                     store=cfg.store, first_start=engine.first_start,
                     bucket_span=job.bucket_span.total_seconds(),
                     query_delay=engine.qd.total_seconds(),
                     frequency=engine.frequency.total_seconds(),
                     interval=rule.interval.total_seconds(), lookback=rule.lookback.total_seconds(),
                     frontier=engine.frontier, next_rule_run=engine.next_run,
                     pending_events=engine.pending_count,
                     inputs=sorted(self.inputs), alert_on_interim=cfg.alerts.alert_on_interim,
                     backfill_from=None if engine.state.backfill_from_ms is None
                     else from_epoch_ms(engine.state.backfill_from_ms))  # fmt: skip
            if cfg.alerts.outputs:
                self.delivery = DeliveryWorker(
                    cfg.store, self._open_sinks, policy=RetryPolicy(), log=self.log,
                    metrics=self.metrics, clock=self.clock,
                )  # fmt: skip
                self.delivery.start()
            if cfg.http.listen is not None:
                self._start_http()
            self.metrics.up.set(1)
            self._heartbeat = self.clock.monotonic()
            self._update_status()
        except BaseException:
            self._close_resources()
            raise

    def _start_http(self) -> None:
        self.http = open_http(
            self.config.http, submit=self.submit, health=self.health,
            metrics_text=self.render_metrics, metrics=self.metrics, log=self.log,
            routes=self.http_routes,
        )  # fmt: skip
        self._accepting = True

    def _open_sinks(self) -> list[Sink]:
        """The outputs (on the delivery thread, which uses them)."""
        alerts = self.config.alerts
        headers = None
        if alerts.webhook_auth is not None:
            headers = auth_headers(alerts.webhook_auth, alerts.webhook_token())
        return [open_sink(spec, headers=headers) for spec in self.config.alerts.outputs]

    # --- the loop ---------------------------------------------------------------------------

    def submit(self, batch: Batch) -> str:
        """From the HTTP server: queue a parsed batch for the service loop (``accepted``), or
        say why not (``stopping``; ``busy``: the queue is full, the client should retry)."""
        if not self._accepting:
            return STOPPING
        try:
            self._queue.put_nowait(batch)
        except queue.Full:
            self.metrics.ingest_batches.inc(outcome="busy")
            return BUSY
        self._wake.set()
        return ACCEPTED

    def run(self, stop: threading.Event) -> None:
        """Turn the loop until ``stop`` is set, then close. If a turn fails, nothing more is
        committed (the store stays at the last commit, as after ``kill -9``) and the error
        goes up."""
        try:
            while not stop.is_set():
                busy = self.run_once()
                if not busy:
                    self._wake.wait(self.config.poll_interval.total_seconds())
                    self._wake.clear()
        except BaseException as exc:
            self.log("error", "failed", error=f"{type(exc).__name__}: {exc}",
                     message="stopped without committing the turn in progress")  # fmt: skip
            self._accepting = False
            if self.http is not None:
                self.http.stop()
                self.http = None
            self._close_resources()
            raise
        self.close()

    def _behind(self) -> list[tuple[str, str]]:
        return [
            (label, sid)
            for label, inp in self.inputs.items()
            if not inp.broken
            for sid in inp.follower.behind()
        ]

    def run_once(self) -> bool:
        """One turn of the loop; True when it read data (so the next turn should not wait)."""
        engine = self.engine
        store = self.store
        assert engine is not None
        assert store is not None
        now = self.clock.now()
        mono = self.clock.monotonic()
        self._heartbeat = mono
        batches: list[Batch] = []
        while True:
            try:
                batches.append(self._queue.get_nowait())
            except queue.Empty:
                break
        # catching up happens once, at start: a file that appears later is read as live data
        behind = [] if self._live else self._behind()
        if behind and self._catchup_started is None:
            self._start_catchup(mono)
        read_any = False
        report = StepReport()
        interim: list[Alert] = []
        answers: list[tuple[Batch, int, dict[str, Any]]] = []
        # a batch is answered 200 only once its commit is on disk (power loss included)
        with store.durable(bool(batches)), store.transaction():
            if behind:
                label, sid = min(behind, key=lambda b: self.inputs[b[0]].watermarks.get(b[1], -1))
                read_any = self._read(label, self.catchup_budget, mono, sid, live=False)
            else:
                for label in list(self.inputs):
                    read_any |= self._read(label, LIVE_BUDGET, mono, None, live=True)
            for batch in batches:
                answers.append(self._take_batch(batch))
            behind = [] if self._live else self._behind()
            target = None
            if behind:
                marks = [self.inputs[label].watermarks.get(sid) for label, sid in behind]
                if all(m is not None for m in marks):
                    # the data's own clock, with the same reorder window as when live
                    target = (
                        min(min(m for m in marks if m is not None), to_epoch_ms(now)) - engine.qd_ms
                    )
            else:
                target = to_epoch_ms(frontier_target(
                    now, query_delay=engine.qd, frequency=engine.frequency,
                    next_run=engine.next_run, interval=engine.rule.interval,
                ))  # fmt: skip
            moved = target is not None and (
                engine.state.frontier_ms is None or target > engine.state.frontier_ms
            )
            if moved and target is not None:
                report = engine.advance(from_epoch_ms(target))
            if not behind and engine.alert_on_interim:
                interim = engine.early_warning()
            if read_any or batches or moved or interim:
                engine.commit(self._positions())
                self.metrics.commits.inc()
        for batch, status, result in answers:
            batch.finish(status, result)
        if not behind and not self._live:
            self._go_live(self.clock.monotonic())
        self._after_commit(report, interim, mono)
        return read_any and bool(behind)

    def _read(self, label: str, budget: int, mono: float, sid: str | None, *, live: bool) -> bool:
        engine = self.engine
        assert engine is not None
        inp = self.inputs[label]
        if inp.broken:
            return False
        try:
            chunks = inp.follower.poll(budget, mono, sid)
            parsed_chunks = [(chunk, inp.parser.parse(chunk)) for chunk in chunks]
        except InputError as exc:
            inp.broken = True
            self.log("error", "input_error", source=label, error=str(exc),
                     message="this input is no longer read; fix it and restart")  # fmt: skip
            return False
        for chunk, parsed in parsed_chunks:
            if not live:
                self._catchup_read += len(chunk.data)
            count_parsed(self.metrics, self.log, label, parsed)
            if parsed.events:
                newest = to_epoch_ms(max(e.timestamp for e in parsed.events))
                if newest > inp.watermarks.get(chunk.stream_id, -1):
                    inp.watermarks[chunk.stream_id] = newest
            outcome = engine.ingest(parsed.events, label, live=live)
            count_outcome(self.metrics, label, outcome)
            log_quarantine(self.log, label, outcome.quarantined, engine.quarantine)
            if not live:
                self._catchup_kept += outcome.kept
        if chunks:
            self.quiet.active(label, mono)
        return bool(chunks)

    def _take_batch(self, batch: Batch) -> tuple[Batch, int, dict[str, Any]]:
        assert self.engine is not None
        assert self.store is not None
        result = take_batch(batch, self.engine, self.store, self.metrics, self.log, self.clock,
                            identity=self.config.http.identity)  # fmt: skip
        if not result.get("duplicate"):
            self.quiet.active(batch.source, self.clock.monotonic())
        return batch, 200, result

    def _positions(self) -> dict[str, Any]:
        return {label: inp.follower.to_state() for label, inp in self.inputs.items()}

    def _start_catchup(self, mono: float) -> None:
        self._catchup_started = mono
        self._last_progress = mono
        self._catchup_total = sum(i.follower.remaining_bytes() for i in self.inputs.values())
        self.log("info", "catching_up", bytes=self._catchup_total,
                 backfill=self.engine.first_start if self.engine else None)  # fmt: skip

    def _go_live(self, mono: float) -> None:
        engine = self.engine
        assert engine is not None
        self._live = True
        if self._catchup_started is not None:
            self.log("info", "caught_up", seconds=round(mono - self._catchup_started, 3),
                     bytes_read=self._catchup_read, events_kept=self._catchup_kept,
                     buckets=engine.job.stats.bucket_count, frontier=engine.frontier)  # fmt: skip
        old = older_than_backfill(engine, engine.state.older_than_backfill - self._older_at_start)
        if old is not None and old["since_start"]:
            self.log("warning", "older_than_backfill", events=old["since_start"],
                     backfill_from=old["backfill_from"], newest=old["newest"],
                     message=old["message"])  # fmt: skip
        self.log("info", "live", frontier=engine.frontier, next_rule_run=engine.next_run)

    def _after_commit(self, report: StepReport, interim: list[Alert], mono: float) -> None:
        engine = self.engine
        assert engine is not None
        report_turn(self.metrics, self.log, report, interim, live=self._live)
        if (
            self._catchup_started is not None
            and not self._live
            and mono - self._last_progress >= PROGRESS_EVERY
        ):
            self._last_progress = mono
            total = max(self._catchup_total, self._catchup_read)
            self.log("info", "backfill_progress" if engine.first_start else "catch_up_progress",
                     bytes_read=self._catchup_read, bytes_total=total,
                     percent=round(100.0 * self._catchup_read / total, 1) if total else 100.0,
                     events_kept=self._catchup_kept, buckets=engine.job.stats.bucket_count,
                     data_time=engine.frontier,
                     seconds=round(mono - self._catchup_started, 1))  # fmt: skip
        self._check_memory()
        if self._live:
            self.quiet.check(mono, self.config.quiet_after)
        if self.delivery is not None:
            self.delivery.wake()
        self._update_metrics()
        self._update_status()

    def _check_memory(self) -> None:
        assert self.engine is not None
        self._memory_status = report_memory(self.log, self.engine, self._memory_status)

    def _gap(self, label: str, start_ms: int, end_ms: int | None) -> None:
        store, engine = self.store, self.engine
        assert store is not None
        assert engine is not None
        record_gap(store, engine.config.job_id, label, start_ms, end_ms)

    def health(self) -> tuple[int, dict[str, Any]]:
        """``/healthz``: 200 while the loop turns, 503 when it is stalled or stopping."""
        with self._status_lock:
            doc = dict(self._status)
        stalled_after = max(30.0, 10 * self.config.poll_interval.total_seconds())
        age = self.clock.monotonic() - self._heartbeat
        if not self._accepting:
            return 503, {"status": "stopping", **doc}
        if age > stalled_after:
            return 503, {"status": "stalled", "seconds_since_loop": round(age, 1), **doc}
        return 200, {"status": "ok", **doc}

    def render_metrics(self) -> str:
        return self.metrics.render()

    # --- stop -------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop accepting, commit what was taken, snapshot, release everything."""
        self._accepting = False
        if self.http is not None:
            self.http.stop()
            self.http = None
        engine, store = self.engine, self.store
        if engine is not None and store is not None:
            try:
                answers = []
                with store.durable(), store.transaction():
                    while True:
                        try:
                            answers.append(self._take_batch(self._queue.get_nowait()))
                        except queue.Empty:
                            break
                    engine.commit(self._positions(),
                                  snapshot_reason=f"State persisted due to job close at {iso(self.clock.now())}")  # fmt: skip
                for batch, status, result in answers:
                    batch.finish(status, result)
            finally:
                self.log("info", "stopped", frontier=engine.frontier,
                         next_rule_run=engine.next_run, pending_events=engine.pending_count)  # fmt: skip
        self._close_resources()

    def _update_metrics(self) -> None:
        engine = self.engine
        assert engine is not None
        marks = [w for i in self.inputs.values() for w in i.watermarks.values()]
        engine_metrics(self.metrics, engine, max(marks, default=None), self.clock.now())

    def _update_status(self) -> None:
        if self.engine is None:
            return
        quiet = self.quiet.quiet_since()
        broken = {label: inp.broken for label, inp in self.inputs.items()}
        status = engine_status(self.engine, live=self._live, quiet=quiet, broken=broken)
        with self._status_lock:
            self._status = status

    def _close_resources(self) -> None:
        self.metrics.up.set(0)
        for inp in self.inputs.values():
            inp.follower.close()
        self.inputs = {}
        if self.delivery is not None:
            self.delivery.stop()
            self.delivery = None
        if self.store is not None:
            self.store.close()
            self.store = None
        self._lock.release()
