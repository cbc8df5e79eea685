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

Every error is JSON: ``{"error": "...", ...}``. The server is the standard library's
``ThreadingHTTPServer``: the handler threads parse, the service thread commits.
"""

from __future__ import annotations

import gzip
import hmac
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from rarebird.errors import RarebirdError
from rarebird.events import ProcessEvent
from rarebird.serve.metrics import CONTENT_TYPE
from rarebird.sources.ecs import DocumentError, documents_in, event_from_document

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

    def finish(self, status: int, result: dict[str, Any]) -> None:
        self.status = status
        self.result = result
        self.done.set()


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


class IngestServer:
    """The HTTP server; ``submit`` hands a batch to the service thread."""

    def __init__(
        self,
        address: tuple[str, int],
        *,
        token: str | None,
        max_body_bytes: int,
        max_events: int,
        submit: Callable[[Batch], bool],
        health: Callable[[], tuple[int, dict[str, Any]]],
        metrics: Callable[[], str],
        count: Callable[[str, int], None] = lambda path, code: None,
    ) -> None:
        self.token = token
        self.max_body_bytes = max_body_bytes
        self.max_events = max_events
        self.submit = submit
        self.health = health
        self.metrics = metrics
        self.count = count
        server = self

        class Handler(_Handler):
            owner = server

        try:
            self.httpd = ThreadingHTTPServer(address, Handler)
        except OSError as exc:
            raise RarebirdError(
                f"cannot listen on {address[0]}:{address[1]}: {exc.strerror or exc}"
            ) from None
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def host(self) -> str:
        return str(self.httpd.server_address[0])

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
            name="rarebird-http", daemon=True,
        )  # fmt: skip
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting requests (requests in progress finish)."""
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    owner: IngestServer
    server_version = "rarebird"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the service logs what matters

    # -- answers --------------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str,
              headers: dict[str, str] | None = None) -> None:  # fmt: skip
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.owner.count(self.path.split("?", 1)[0], status)

    def _json(
        self, status: int, doc: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        self._send(status, orjson.dumps(doc) + b"\n", "application/json", headers)

    # -- GET -----------------------------------------------------------------------------

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            status, doc = self.owner.health()
            self._json(status, doc)
        elif path == "/metrics":
            self._send(200, self.owner.metrics().encode(), CONTENT_TYPE)
        elif path == "/ingest":
            self._json(405, {"error": "use POST to send a batch"}, {"Allow": "POST"})
        else:
            self._json(404, {"error": f"no such endpoint: {path}",
                             "endpoints": ["POST /ingest", "GET /healthz", "GET /metrics"]})  # fmt: skip

    do_HEAD = do_GET

    # -- POST ------------------------------------------------------------------------------

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        if path != "/ingest":
            self._discard_body()
            self._json(404, {"error": f"no such endpoint: {path}"})
            return
        owner = self.owner
        if owner.token is None:
            self._discard_body()
            self._json(403, {"error": "ingest is disabled: no token is configured "
                                      "(http.token, token_file or token_env)"})  # fmt: skip
            return
        auth = self.headers.get("Authorization", "")
        scheme, _, given = auth.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), owner.token.encode()
        ):
            self._discard_body()
            self._json(401, {"error": "missing or wrong bearer token"},
                       {"WWW-Authenticate": 'Bearer realm="rarebird"'})  # fmt: skip
            return
        try:
            body = self._read_body()
            encoding = self.headers.get("Content-Encoding", "").strip().lower()
            if encoding in ("gzip", "x-gzip"):
                body = _gunzip(body, owner.max_body_bytes)
            elif encoding not in ("", "identity"):
                raise BadBatch(415, {"error": f"unsupported Content-Encoding {encoding!r} "
                                              "(use gzip or none)"})  # fmt: skip
            batch_id = self.headers.get("X-Rarebird-Batch-Id")
            source = self.headers.get("X-Rarebird-Source") or "http"
            events = parse_batch(body, max_events=owner.max_events)
        except BadBatch as exc:
            self._json(exc.status, exc.body)
            return
        batch = Batch(f"http:{source}" if source != "http" else "http", events, batch_id or None)
        if not owner.submit(batch):
            self._json(503, {"error": "rarebird is shutting down; send again later"},
                       {"Retry-After": "5"})  # fmt: skip
            return
        if not batch.done.wait(COMMIT_TIMEOUT):
            self._json(503, {"error": "the batch was not committed in time; send it again "
                                      "(with X-Rarebird-Batch-Id to be safe)"})  # fmt: skip
            return
        self._json(batch.status, batch.result or {})

    def _read_body(self) -> bytes:
        owner = self.owner
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked(owner.max_body_bytes)
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            raise BadBatch(411, {"error": "Content-Length is required (or chunked encoding)"})
        try:
            length = int(length_text)
        except ValueError:
            raise BadBatch(400, {"error": f"bad Content-Length {length_text!r}"}) from None
        if length > owner.max_body_bytes:
            self._discard_body()
            raise BadBatch(413, {"error": f"body too large: {length} bytes, at most "
                                          f"{owner.max_body_bytes}",
                                 "max_body_bytes": owner.max_body_bytes})  # fmt: skip
        return self.rfile.read(length)

    def _read_chunked(self, limit: int) -> bytes:
        out = bytearray()
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadBatch(400, {"error": "malformed chunked body"}) from None
            if size == 0:
                while self.rfile.readline(1024).strip():
                    pass  # trailers
                return bytes(out)
            if len(out) + size > limit:
                raise BadBatch(413, {"error": f"body too large: more than {limit} bytes",
                                     "max_body_bytes": limit})  # fmt: skip
            out += self.rfile.read(size)
            self.rfile.readline(1024)

    def _discard_body(self) -> None:
        """Read an unwanted body (up to a bound) so the client, which sends all of it before
        reading the answer, gets the answer rather than a reset connection."""
        length = self.headers.get("Content-Length")
        cap = 2 * self.owner.max_body_bytes + (64 << 20)
        if length and length.isdigit() and int(length) <= cap:
            left = int(length)
            while left > 0:
                got = self.rfile.read(min(left, 1 << 20))
                if not got:
                    break
                left -= len(got)
        else:
            self.close_connection = True


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
