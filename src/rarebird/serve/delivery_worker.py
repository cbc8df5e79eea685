"""The delivery of alerts beside the service loop: a thread with its own store connection and
its own sinks runs :class:`~rarebird.run.delivery.Delivery` whenever the loop commits alerts (and
every second), so a receiver that hangs, is down or answers 429 costs the loop nothing --
ingestion, the rule and ``/healthz`` go on. What it does is counted in the service's metrics
(``rarebird_alerts_delivered_total``, ``rarebird_alerts_dead_lettered_total``,
``rarebird_output_retries_total``, ``rarebird_outbox_pending``) and logged."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence

from rarebird.clock import Clock
from rarebird.errors import RarebirdError
from rarebird.run.delivery import Delivery, RetryPolicy, SinkReport
from rarebird.serve.metrics import ServeMetrics
from rarebird.sinks import Sink
from rarebird.store import open_store
from rarebird.store.delivery import pending_for

LogFn = Callable[..., None]
#: seconds between passes when nothing wakes the worker
IDLE = 1.0


class DeliveryWorker:
    """``start`` (raises if a sink cannot be opened), ``wake`` after a commit, ``stop``."""

    def __init__(
        self,
        store_path: str,
        open_sinks: Callable[[], Sequence[Sink]],
        *,
        policy: RetryPolicy,
        log: LogFn,
        metrics: ServeMetrics,
        clock: Clock,
    ) -> None:
        self.store_path = store_path
        self._open_sinks = open_sinks
        self.policy = policy
        self.log = log
        self.metrics = metrics
        self.clock = clock
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._delivery: Delivery | None = None
        #: when ``stop`` was asked: the grace's end and the outputs' failure counts
        self._drain_until = 0.0
        self._failures_at_stop: dict[str, int] = {}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rarebird-delivery", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._failed is not None:
            self._thread.join()
            raise self._failed

    def wake(self) -> None:
        self._wake.set()

    def stop(self, grace: float = 10.0) -> None:
        """Stop after the attempt in progress, with a last pass first that starts no output
        after ``grace`` seconds and skips an output that failed since the stop was asked (a
        hung receiver would cost its timeout again); what is not delivered stays in the outbox
        for the next start."""
        if self._thread is None:
            return
        delivery = self._delivery
        self._failures_at_stop = dict(delivery.failures) if delivery is not None else {}
        self._drain_until = time.monotonic() + grace
        self._stop.set()
        self._wake.set()
        self._thread.join(grace + 15)
        self._thread = None

    def _sleep(self, seconds: float) -> bool:
        return self._stop.wait(seconds)

    def _report(self, sink: str, report: SinkReport) -> None:
        m = self.metrics
        if report.delivered:
            m.alerts_delivered.inc(report.delivered, output=sink)
        if report.dead_lettered:
            m.alerts_dead_lettered.inc(report.dead_lettered, output=sink)
        if report.retries:
            m.output_retries.inc(report.retries, output=sink)
        m.output_up.set(0 if report.left else 1, output=sink)

    def _run(self) -> None:
        try:
            store = open_store(self.store_path)
            try:
                sinks = list(self._open_sinks())
            except BaseException:
                store.close()
                raise
        except BaseException as exc:
            self._failed = exc
            self._ready.set()
            return
        self._ready.set()
        delivery = Delivery(store, sinks, policy=self.policy, log=self.log, sleep=self._sleep,
                            clock=self.clock, on_report=self._report)  # fmt: skip
        self._delivery = delivery
        try:
            while not self._stop.is_set():
                self._pass(delivery, stop=self._stop)
                self._wake.wait(IDLE)
                self._wake.clear()
            # stopping: one last pass without retries, so a clean stop delivers what it can --
            # also to outputs resting after a failure, but not to one whose failure came after
            # the stop was asked (the attempt in progress: trying again costs its timeout
            # again), and starting no output once the grace is over
            delivery.policy = RetryPolicy(retries=0, backoff=0, max_backoff=0)
            before = self._failures_at_stop
            delivery.down_until = {
                name: math.inf for name, n in delivery.failures.items() if n > before.get(name, 0)
            }
            over = threading.Event()
            timer = threading.Timer(max(0.0, self._drain_until - time.monotonic()), over.set)
            timer.daemon = True
            timer.start()
            try:
                self._pass(delivery, stop=over)
            finally:
                timer.cancel()
        finally:
            for sink in sinks:
                try:
                    sink.close()
                except (RarebirdError, OSError) as exc:
                    self.log("error", "output_close_failed", output=sink.name, error=str(exc))
            store.close()

    def _pass(self, delivery: Delivery, *, stop: threading.Event | None) -> None:
        try:
            delivery.deliver(stop=stop)
            for sink in delivery.sinks:
                self.metrics.outbox_pending.set(
                    pending_for(delivery.store, sink.name), output=sink.name
                )
        except (RarebirdError, OSError) as exc:  # the store failed: try again later
            self.log("error", "delivery_failed", error=str(exc))
            self._stop.wait(IDLE)
