"""Alerts to the outputs, from the store's outbox: retries, backoff, dead letters, one cursor per
sink -- the same for ``serve`` (a worker thread beside the service loop), ``detect`` and
``rule run`` (after their commits) and ``rarebird outputs replay``.

Every alert a rule run makes is written to the outbox *in the transaction that stores it*, so
an alert that is stored is also waiting for every output. A sink takes the outbox in order from
its cursor; once ``write`` returns, the cursor moves past what it took (one commit):

- a failure that may pass (connection refused or reset, timeout, ``408``, ``425``, ``429``,
  ``5xx``) is retried with exponential backoff and full jitter (``backoff * 2**n``, capped at
  ``max_backoff``; a ``Retry-After`` is honoured up to that cap) up to ``retries`` times; then
  the alerts **stay in the outbox** and the sink is tried again after ``max_backoff`` (in
  ``serve``) or by the next ``detect`` / ``serve`` / ``outputs replay`` -- nothing is lost while a
  receiver is down, however long;
- a refusal for good (any other ``4xx``) sends that alert to the **dead letters** (table
  ``dead_letters``; logged ``dead_letter``, counted in ``rarebird_alerts_dead_lettered_total``,
  shown by ``rarebird status``, re-sent by ``rarebird outputs replay``) and the queue moves on.

Delivery is **at least once**: a crash after a sink took alerts and before the cursor commit
sends them again (at most one batch, :data:`BATCH`, per sink). Each alert carries its id
(``kibana.alert.uuid``, and the webhook's ``Idempotency-Key``), so receivers that de-duplicate
(Elasticsearch ``_bulk`` ``create``, the SQLite sink, a webhook that keeps ids) see each once.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rarebird.alerts.model import Alert
from rarebird.clock import SYSTEM_CLOCK, Clock
from rarebird.errors import RarebirdError
from rarebird.sinks.base import Sink, SinkError
from rarebird.store import Store
from rarebird.store.delivery import (
    add_dead_letter,
    advance_cursor,
    outbox_after,
    register_sink,
    sink_cursor,
)
from rarebird.timeutil import to_epoch_ms

#: outbox rows handed to a sink at once
BATCH = 500
LogFn = Callable[..., None]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try before leaving alerts in the outbox for later."""

    retries: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds before retry number ``attempt`` (1-based): full jitter over the exponential
        step, at least ``Retry-After``, at most ``max_backoff``."""
        step = min(self.backoff * (2 ** (attempt - 1)), self.max_backoff)
        delay = rng.uniform(step / 2, step)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return min(delay, self.max_backoff)


@dataclass
class SinkReport:
    """What one pass did for one sink."""

    delivered: int = 0
    dead_lettered: int = 0
    retries: int = 0
    #: the sink failed and the rest waits in the outbox
    left: int = 0
    error: str = ""


class Delivery:
    """Delivers the outbox of ``store`` to ``sinks``. Not thread-safe: one per thread (the
    store connection is the thread's)."""

    def __init__(
        self,
        store: Store,
        sinks: Sequence[Sink],
        *,
        policy: RetryPolicy = RetryPolicy(),
        log: LogFn | None = None,
        sleep: Callable[[float], bool] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
        on_report: Callable[[str, SinkReport], None] | None = None,
    ) -> None:
        self.store = store
        self.sinks = list(sinks)
        self.policy = policy
        self.log: LogFn = log or (lambda *a, **k: None)
        #: sleeps; returns True when asked to stop meanwhile
        self.sleep = sleep or (lambda s: threading.Event().wait(s))
        self.clock = clock
        self.rng = rng or random.Random()
        self.on_report = on_report
        #: sinks that failed, and the monotonic time before which they are not tried again
        self.down_until: dict[str, float] = {}
        #: how many times each sink's delivery stopped on a failure (this process)
        self.failures: dict[str, int] = {}

    def deliver(self, *, stop: threading.Event | None = None) -> dict[str, SinkReport]:
        """One pass: every sink that is not resting takes what waits for it."""
        out: dict[str, SinkReport] = {}
        for sink in self.sinks:
            if stop is not None and stop.is_set():
                break
            if self.clock.monotonic() < self.down_until.get(sink.name, 0.0):
                continue
            report = self._deliver_to(sink, stop)
            out[sink.name] = report
            if self.on_report is not None:
                self.on_report(sink.name, report)
        return out

    def _deliver_to(self, sink: Sink, stop: threading.Event | None) -> SinkReport:
        report = SinkReport()
        name = sink.name
        register_sink(self.store, name)
        while True:
            rows = outbox_after(self.store, sink_cursor(self.store, name), BATCH)
            if not rows:
                self.down_until.pop(name, None)
                return report
            done = self._batch(sink, rows, report, stop)
            if done < len(rows):
                report.left = len(rows) - done
                self.down_until[name] = self.clock.monotonic() + self.policy.max_backoff
                self.failures[name] = self.failures.get(name, 0) + 1
                self.log("warning", "output_waiting", output=name, error=report.error,
                         waiting=report.left, retries=report.retries,
                         message="alerts stay in the outbox and are sent when the output takes "
                                 "them again")  # fmt: skip
                return report

    def _batch(
        self,
        sink: Sink,
        rows: list[tuple[int, Alert]],
        report: SinkReport,
        stop: threading.Event | None,
    ) -> int:
        """Deliver ``rows``; how many were dealt with (delivered or dead-lettered)."""
        name = sink.name
        done = 0
        attempt = 0
        while done < len(rows):
            alerts = [a for _, a in rows[done:]]
            try:
                sink.write(alerts)
                took = len(alerts)
                error: SinkError | None = None
            except SinkError as exc:
                took, error = exc.delivered, exc
            except (RarebirdError, OSError) as exc:
                took, error = 0, SinkError(f"{name}: {exc}")
            if took:
                done += took
                report.delivered += took
                advance_cursor(self.store, name, rows[done - 1][0])
                attempt = 0
            if error is None:
                continue
            report.error = str(error)
            if not error.retryable:
                seq, alert = rows[done]
                self._dead_letter(name, alert, attempt + 1, str(error))
                advance_cursor(self.store, name, seq)
                report.dead_lettered += 1
                done += 1
                attempt = 0
                continue
            attempt += 1
            if attempt > self.policy.retries:
                return done
            report.retries += 1
            if self.sleep(self.policy.delay(attempt, error.retry_after, self.rng)):
                return done  # asked to stop: the rest waits in the outbox
            if stop is not None and stop.is_set():
                return done
        return done

    def _dead_letter(self, sink: str, alert: Alert, attempts: int, error: str) -> None:
        add_dead_letter(self.store, sink, alert, attempts=attempts, error=error,
                        at_ms=to_epoch_ms(self.clock.now()))  # fmt: skip
        self.log("error", "dead_letter", output=sink, alert_id=alert.id,
                 revision=alert.revision, error=error,
                 message="the output refused this alert; `rarebird outputs replay` sends it "
                         "again")  # fmt: skip
