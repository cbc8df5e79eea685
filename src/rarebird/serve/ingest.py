"""The HTTP endpoint of ``rarebird serve``: NDJSON ingest, ``/healthz`` and ``/metrics``.

``POST /ingest`` takes a batch of ECS documents, one JSON object per line (NDJSON, as Vector's
``http`` sink with ``framing.method = "newline_delimited"`` and Fluent Bit's ``http`` output with
``Format json_lines`` send), or one JSON array of them. Rules:

- ``Authorization: Bearer <token>`` must carry the configured token (compared in constant
  time); otherwise ``401`` with ``WWW-Authenticate: Bearer``. Without a configured token the
  endpoint refuses every batch (``403``): ingest is never open by accident.
- The body may be ``Content-Encoding: gzip``. More than ``max_body_bytes`` (before or after
  decompression) is ``413``; more than ``max_events`` documents is ``413`` too.
- The batch is all or nothing: if any line is not a JSON object with a valid ``@timestamp``,
  nothing is taken and the answer is ``400`` with the first problems by line number.
- A good batch is handed to the service, which commits it (with everything else) before the
  answer ``200 {"accepted": N, "kept": K, "not_matched": M, "late": L, ...}`` is sent: an
  acknowledged batch survives a crash. A client that did not get an answer sends again; to make
  that exactly-once, send a batch id in ``X-Rarebird-Batch-Id``: a batch id seen before is
  answered with the first answer (``"duplicate": true``) and not taken again.
- ``X-Rarebird-Source`` names the sender in reports (default ``http``).

Every error is JSON: ``{"error": "...", ...}``. This module holds what a batch *is* (parsing,
limits, the hand-over to the service thread); :mod:`.http_app` is the ASGI application that
reads requests, and :mod:`.http_server` the server (uvicorn, made for hostile clients) that
runs it beside the service loop.
"""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from rarebird.clock import Clock
from rarebird.events import ProcessEvent
from rarebird.run.live import LiveEngine
from rarebird.serve.metrics import ServeMetrics
from rarebird.serve.reporting import count_outcome, log_quarantine
from rarebird.sources.ecs import DocumentError, documents_in, event_from_document
from rarebird.sources.identity import as_login_identity
from rarebird.store import Store
from rarebird.store.serve import batch_result, record_batch
from rarebird.timeutil import to_epoch_ms

MAX_ERRORS = 20
#: how long a handler waits for the service to commit a batch
COMMIT_TIMEOUT = 60.0


class BadBatch(Exception):
    """A batch refused as a whole: the HTTP status and a JSON body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("error", ""))
        self.status = status
        self.body = body


@dataclass
class Batch:
    """A parsed batch waiting for the service thread; ``done`` is set when it was committed."""

    source: str
    events: list[ProcessEvent]
    batch_id: str | None = None
    result: dict[str, Any] | None = None
    status: int = 200
    done: threading.Event = field(default_factory=threading.Event)
    #: called (from the service thread) once the batch is answered
    on_done: Callable[[], None] | None = None

    def finish(self, status: int, result: dict[str, Any]) -> None:
        self.status = status
        self.result = result
        self.done.set()
        if self.on_done is not None:
            self.on_done()


def decode_body(
    body: bytes, encoding: str, *, max_body_bytes: int, max_events: int
) -> list[ProcessEvent]:
    """The events of a request body as sent (``Content-Encoding`` ``gzip`` or none); CPU-bound,
    so the HTTP server runs it on a worker thread. :class:`BadBatch` when it is refused."""
    encoding = encoding.strip().lower()
    if encoding in ("gzip", "x-gzip"):
        body = _gunzip(body, max_body_bytes)
    elif encoding not in ("", "identity"):
        raise BadBatch(415, {"error": f"unsupported Content-Encoding {encoding[:40]!r} "
                                      "(use gzip or none)"})  # fmt: skip
    return parse_batch(body, max_events=max_events)


def parse_batch(body: bytes, *, max_events: int) -> list[ProcessEvent]:
    """The events of an NDJSON (or JSON array) body; :class:`BadBatch` if any line is bad.

    >>> evs = parse_batch(b'{"@timestamp": "2026-03-01T00:00:00Z", "user": {"name": "a"}}\\n',
    ...                   max_events=10)
    >>> [e.user_name for e in evs]
    ['a']
    >>> try:
    ...     parse_batch(b'{"@timestamp": "2026-03-01T00:00:00Z"}\\nnot json\\n', max_events=10)
    ... except BadBatch as exc:
    ...     exc.status, exc.body["errors"][0]["line"], exc.body["errors"][0]["reason"]
    (400, 2, 'invalid JSON')
    """
    errors: list[dict[str, Any]] = []
    bad = 0
    events: list[ProcessEvent] = []
    text = body.lstrip()
    if text.startswith(b"["):
        try:
            items = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise BadBatch(400, {"error": "malformed batch: the body is not valid JSON",
                                 "detail": str(exc)}) from None  # fmt: skip
        lines: list[tuple[int, Any]] = [(i + 1, item) for i, item in enumerate(items)]
        what = "element"
    else:
        lines = []
        for n, raw in enumerate(body.split(b"\n"), start=1):
            if raw.strip():
                lines.append((n, raw))
        what = "line"
    if len(lines) > max_events:
        raise BadBatch(413, {"error": f"batch too large: {len(lines)} documents, at most "
                                      f"{max_events} per request",
                             "max_events": max_events})  # fmt: skip
    for n, raw in lines:
        try:
            obj = orjson.loads(raw) if isinstance(raw, bytes) else raw
        except orjson.JSONDecodeError as exc:
            bad += 1
            if len(errors) < MAX_ERRORS:
                errors.append({what: n, "reason": "invalid JSON", "detail": str(exc)})
            continue
        try:
            for doc in documents_in(obj):
                events.append(event_from_document(doc))
        except DocumentError as exc:
            bad += 1
            if len(errors) < MAX_ERRORS:
                errors.append({what: n, "reason": exc.reason, "detail": exc.detail})
    if bad:
        raise BadBatch(400, {
            "error": f"malformed batch: {bad} of {len(lines)} {what}s are not events; "
                     "nothing was taken",
            "errors": errors,
        })  # fmt: skip
    return events


def _gunzip(body: bytes, limit: int) -> bytes:
    try:
        dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = dec.decompress(body, limit + 1)
        if len(out) > limit or dec.unconsumed_tail:
            raise BadBatch(413, {"error": f"body too large once decompressed: more than {limit} "
                                          "bytes", "max_body_bytes": limit})  # fmt: skip
        return out
    except (zlib.error, gzip.BadGzipFile) as exc:
        raise BadBatch(400, {"error": "malformed gzip body", "detail": str(exc)}) from None


def take_batch(
    batch: Batch,
    engine: LiveEngine,
    store: Store,
    metrics: ServeMetrics,
    log: Callable[..., None],
    clock: Clock,
    *,
    identity: str = "user",
) -> dict[str, Any]:
    """Give a batch's events to the live engine (inside the service's transaction) and return
    the answer: what became of its events. A batch id already accepted answers as it did then,
    marked ``duplicate`` (exactly-once with ``X-Rarebird-Batch-Id``)."""
    if batch.batch_id:
        seen = batch_result(store, batch.batch_id)
        if seen is not None:
            metrics.ingest_batches.inc(outcome="duplicate")
            return {**orjson.loads(seen), "duplicate": True}
    events = batch.events
    if identity == "login":  # as the sources do for followed inputs
        events = [as_login_identity(e) for e in events]
    outcome = engine.ingest(events, batch.source, live=True)
    metrics.events_read.inc(outcome.received, source=batch.source)
    count_outcome(metrics, batch.source, outcome)
    log_quarantine(log, batch.source, outcome.quarantined, engine.quarantine)
    result: dict[str, Any] = {**outcome.to_doc(), "accepted": outcome.received}
    if batch.batch_id:
        record_batch(store, batch.batch_id, engine.config.job_id, to_epoch_ms(clock.now()),
                     orjson.dumps(result).decode())  # fmt: skip
    metrics.ingest_batches.inc(outcome="accepted")
    return result
