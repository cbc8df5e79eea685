"""The ASGI application of ``rarebird serve``: ``POST /ingest``, ``GET /healthz``, ``GET /metrics``.

:func:`create_app` builds it (Starlette routing); more routes -- the triage pages -- can be
mounted beside these with ``routes=`` (a ``starlette.routing.Mount`` of another ASGI app), so
that one server answers both. What each endpoint does is in :mod:`.ingest`; this module is
about reading requests from clients that may be hostile:

- the body is read against a deadline (``body_timeout``): a client that sends its headers and
  then trickles (or stops) gets ``408`` and the connection is closed -- the header deadline is
  the server's (:mod:`.http_server`);
- the body is counted as it arrives: more than ``max_body_bytes`` is ``413`` whatever the
  ``Content-Length`` said, chunked or not (a negative or malformed length never reaches the
  application: the HTTP parser refuses the request with ``400``);
- every body being read counts against ``max_inflight_bytes``; past it the answer is ``429``
  (``Retry-After``), as it is when the service's queue of batches is full;
- parsing (and gunzipping) runs on a worker thread, so ``/healthz`` answers while a 64 MB
  batch is parsed; the answer waits, without a thread, for the commit that holds the batch;
- error bodies say what the client did wrong, never what happened inside: an unexpected error
  is logged and answered ``500 {"error": "internal error"}``;
- ``rarebird_http_requests_total`` is labelled by endpoint (``/ingest``, ``/healthz``,
  ``/metrics``, a mounted prefix, or ``other``), never by the path a client made up.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import threading
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from rarebird.serve.ingest import BadBatch, Batch, decode_body
from rarebird.serve.metrics import CONTENT_TYPE

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
LogFn = Callable[..., None]

#: what ``submit`` answers: taken, the service is stopping, or its queue is full
ACCEPTED, STOPPING, BUSY = "accepted", "stopping", "busy"
ENDPOINTS = ("POST /ingest", "GET /healthz", "GET /metrics")


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """What one client, and all of them together, may cost the service."""

    max_body_bytes: int = 64 * 1024 * 1024
    max_events: int = 100_000
    #: seconds to send the request line and headers (the server's deadline)
    header_timeout: float = 10.0
    #: seconds to send the whole body, once the headers are in
    body_timeout: float = 60.0
    #: connections open at once; more are answered 503 and closed at once
    max_connections: int = 100
    #: request bodies held in memory at once, all clients together
    max_inflight_bytes: int = 128 * 1024 * 1024
    #: seconds an answer waits for the commit that holds its batch
    commit_timeout: float = 60.0
    #: seconds an idle keep-alive connection is kept
    keep_alive: float = 5.0


@dataclass(frozen=True)
class Handlers:
    """What the application asks of the service (all thread-safe)."""

    token: str | None
    submit: Callable[[Batch], str]
    health: Callable[[], tuple[int, dict[str, Any]]]
    metrics: Callable[[], str]
    count: Callable[[str, int], None] = lambda endpoint, code: None
    log: LogFn = lambda *a, **k: None


class _Refused(Exception):
    """An answer decided while reading: the status, the body, extra headers, and whether the
    rest of the body may still be drained (so the client sees the answer) before closing."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None,
                 *, drain: bool = True) -> None:  # fmt: skip
        super().__init__(body.get("error", ""))
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.drain = drain


async def _answer(send: Send, status: int, body: bytes, content_type: str,
                  headers: dict[str, str] | None = None, *, close: bool = False) -> None:  # fmt: skip
    raw = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if close:
        raw.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _json(send: Send, status: int, doc: dict[str, Any],
                headers: dict[str, str] | None = None, *, close: bool = False) -> None:  # fmt: skip
    await _answer(send, status, orjson.dumps(doc) + b"\n", "application/json", headers,
                  close=close)  # fmt: skip


class _Budget:
    """Bytes of request bodies held in memory, all requests together."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()

    def take(self, n: int) -> bool:
        with self._lock:
            if self.used + n > self.limit:
                return False
            self.used += n
            return True

    def give(self, n: int) -> None:
        with self._lock:
            self.used -= n


class IngestEndpoint:
    """``POST /ingest`` as a raw ASGI application (the body is read by hand, see the module
    doc)."""

    def __init__(self, handlers: Handlers, limits: HttpLimits, pool: ThreadPoolExecutor) -> None:
        self.h = handlers
        self.limits = limits
        self.pool = pool
        self.budget = _Budget(limits.max_inflight_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.body_timeout
        held = 0
        try:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                       for k, v in scope["headers"]}  # fmt: skip
            self._check_request(scope["method"], headers)
            body, held = await self._read(receive, headers, deadline)
            events = await loop.run_in_executor(self.pool, functools.partial(
                decode_body, body, headers.get("content-encoding", ""),
                max_body_bytes=self.limits.max_body_bytes, max_events=self.limits.max_events,
            ))  # fmt: skip
        except _Refused as refused:
            if refused.drain:
                await self._drain(receive, deadline)
            await _json(send, refused.status, refused.body, refused.headers, close=True)
            return
        except BadBatch as bad:
            await _json(send, bad.status, bad.body)
            return
        except _Gone:
            return
        finally:
            if held:
                self.budget.give(held)
        await self._hand_over(headers, events, send)

    def _check_request(self, method: str, headers: dict[str, str]) -> None:
        if method != "POST":
            raise _Refused(405, {"error": "use POST to send a batch"}, {"Allow": "POST"})
        if self.h.token is None:
            raise _Refused(403, {"error": "ingest is disabled: no token is configured "
                                          "(http.token, token_file or token_env)"})  # fmt: skip
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), self.h.token.encode()
        ):
            raise _Refused(401, {"error": "missing or wrong bearer token"},
                           {"WWW-Authenticate": 'Bearer realm="rarebird"'})  # fmt: skip
        encoding = headers.get("content-encoding", "").strip().lower()
        if encoding not in ("", "identity", "gzip", "x-gzip"):
            raise _Refused(415, {"error": f"unsupported Content-Encoding {encoding[:40]!r} "
                                          "(use gzip or none)"})  # fmt: skip
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = headers.get("content-length")
        if length is None and not chunked:
            raise _Refused(411, {"error": "Content-Length is required (or chunked encoding)"})
        limit = self.limits.max_body_bytes
        if length is not None and int(length) > limit:  # the parser checked it is a number
            raise _Refused(413, {"error": f"body too large: {int(length)} bytes, at most {limit}",
                                 "max_body_bytes": limit})  # fmt: skip

    async def _receive(self, receive: Receive, deadline: float) -> Message:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise TimeoutError
        return await asyncio.wait_for(receive(), remaining)

    async def _read(
        self, receive: Receive, headers: dict[str, str], deadline: float
    ) -> tuple[bytes, int]:
        """The whole body, counted against the limits as it arrives."""
        limit = self.limits.max_body_bytes
        parts: list[bytes] = []
        size = 0
        complete = False
        try:
            while True:
                try:
                    message = await self._receive(receive, deadline)
                except TimeoutError:
                    raise _Refused(408, {"error": "the request body was not received within "
                                                  f"{self.limits.body_timeout:g}s"},
                                   drain=False) from None  # fmt: skip
                if message["type"] == "http.disconnect":
                    raise _Gone
                chunk = message.get("body", b"")
                if chunk:
                    if size + len(chunk) > limit:
                        raise _Refused(413, {"error": f"body too large: more than {limit} bytes",
                                             "max_body_bytes": limit})  # fmt: skip
                    if not self.budget.take(len(chunk)):
                        raise _Refused(429, {"error": "too many batches in flight; send again "
                                                      "later"}, {"Retry-After": "1"},
                                       drain=False)  # fmt: skip
                    size += len(chunk)
                    parts.append(chunk)
                if not message.get("more_body", False):
                    complete = True
                    return b"".join(parts), size
        finally:
            if not complete:
                self.budget.give(size)

    async def _drain(self, receive: Receive, deadline: float) -> None:
        """Read and drop what is left of a refused body (up to ``max_body_bytes`` more, within
        the body deadline), so a client that sends everything before reading gets the answer
        instead of a reset connection."""
        left = self.limits.max_body_bytes
        try:
            while left > 0:
                message = await self._receive(receive, deadline)
                if message["type"] == "http.disconnect":
                    return
                left -= len(message.get("body", b""))
                if not message.get("more_body", False):
                    return
        except TimeoutError:
            return

    async def _hand_over(self, headers: dict[str, str], events: list[Any], send: Send) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not done.done():
                done.set_result(None)

        def on_done() -> None:  # on the service thread
            with contextlib.suppress(RuntimeError):  # the server stopped: nobody waits
                loop.call_soon_threadsafe(wake)

        source = headers.get("x-rarebird-source") or "http"
        batch = Batch(
            f"http:{source[:64]}" if source != "http" else "http", events,
            headers.get("x-rarebird-batch-id") or None, on_done=on_done,
        )  # fmt: skip
        outcome = self.h.submit(batch)
        if outcome == STOPPING:
            await _json(send, 503, {"error": "rarebird is shutting down; send again later"},
                        {"Retry-After": "5"})  # fmt: skip
            return
        if outcome == BUSY:
            await _json(send, 429, {"error": "rarebird is busy: too many batches wait to be "
                                             "committed; send again later"},
                        {"Retry-After": "1"})  # fmt: skip
            return
        try:
            await asyncio.wait_for(asyncio.shield(done), self.limits.commit_timeout)
        except TimeoutError:
            await _json(send, 503, {"error": "the batch was not committed in time; send it "
                                             "again (with X-Rarebird-Batch-Id to be safe)"})  # fmt: skip
            return
        await _json(send, batch.status, batch.result or {})


class _Gone(Exception):
    """The client went away while sending."""


def _endpoint_label(path: str, known: Sequence[str], prefixes: Sequence[str]) -> str:
    if path in known:
        return path
    for prefix in prefixes:
        if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
            return prefix
    return "other"


def create_app(
    handlers: Handlers,
    limits: HttpLimits = HttpLimits(),
    *,
    routes: Sequence[BaseRoute] = (),
    pool: ThreadPoolExecutor | None = None,
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The ASGI application. ``routes``: more routes (e.g. ``Mount("/ui", app=pages)``) tried
    after the service's own."""
    pool = pool or ThreadPoolExecutor(max_workers=2, thread_name_prefix="rarebird-parse")
    ingest = IngestEndpoint(handlers, limits, pool)

    async def healthz(request: Request) -> Response:
        status, doc = handlers.health()
        return Response(orjson.dumps(doc) + b"\n", status, media_type="application/json")

    async def metrics(request: Request) -> Response:
        return Response(handlers.metrics().encode(), 200, headers={"Content-Type": CONTENT_TYPE})

    async def not_found(request: Request, exc: Exception) -> Response:
        body = {"error": "no such endpoint", "endpoints": list(ENDPOINTS)}
        return Response(orjson.dumps(body) + b"\n", 404, media_type="application/json")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return Response(orjson.dumps({"error": "method not allowed"}) + b"\n", 405,
                        media_type="application/json")  # fmt: skip

    async def failed(request: Request, exc: Exception) -> Response:
        return Response(orjson.dumps({"error": "internal error"}) + b"\n", 500,
                        media_type="application/json")  # fmt: skip

    app = Starlette(
        routes=[
            Route("/ingest", ingest, methods=["POST", "GET", "PUT", "HEAD"]),
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
            Route("/metrics", metrics, methods=["GET", "HEAD"]),
            *routes,
        ],
        exception_handlers={404: not_found, 405: not_allowed, Exception: failed},
    )
    known = ("/ingest", "/healthz", "/metrics")
    prefixes = [r.path for r in routes if isinstance(r, Mount)]

    async def counted(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        label = _endpoint_label(scope["path"], known, prefixes)
        status = 0

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await app(scope, receive, send_counted)
        except Exception as exc:  # answered 500 already by the handler above; keep it quiet
            handlers.log("error", "http_error", endpoint=label,
                         error=f"{type(exc).__name__}: {exc}")  # fmt: skip
        finally:
            if status:
                handlers.count(label, status)

    return counted
