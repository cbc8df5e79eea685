"""The HTTP server of ``rarebird serve``: uvicorn (h11 on asyncio) in a thread beside the
service loop, with the guards uvicorn leaves to its user.

One event loop holds every connection, so a connection costs a file descriptor and a few
kilobytes, never a thread. uvicorn bounds the header size (h11) and closes idle keep-alive
connections, but has no deadline for *receiving* a request (its issue #157:
``timeout_keep_alive`` is reset by every byte), so :class:`GuardedH11Protocol` adds:

- a **header deadline**: the request line and headers must be in within ``header_timeout`` of
  the connection (or of the previous answer, on a kept-alive one); otherwise ``408`` and close.
  Hundreds of half-sent requests (slowloris) therefore hold nothing for long;
- a **connection limit**: past ``max_connections`` open connections a new one is answered
  ``503`` and closed at once, so file descriptors stay for the store and the followed files.
- a **file-descriptor budget** (:func:`fd_budget`): asyncio accepts up to ``backlog``
  connections per wake-up before any of them is refused, and on ``EMFILE`` it logs once per
  remaining slot of that burst (CPython 3.11 ``_accept_connection`` does not stop). Under a
  low ``RLIMIT_NOFILE`` a burst of clients could thus take the descriptors the service needs
  (a followed chunk is parsed through a memfd; SQLite opens its journal), which stopped the
  service. The burst is therefore sized so that held connections, a few bursts in flight and
  a reserve for the service fit under the limit; ``max_connections`` is lowered (with a
  warning) when it alone does not fit. The kernel's listen queue stays long.

The body deadline, the body limits and ``429`` are the application's (:mod:`.http_app`); an
answer that cuts a request body short is followed by a lingering close (:mod:`.linger`), so the
client reads it instead of a reset.
The listening socket is bound by :meth:`HttpServer.__init__`, so "address in use" is an error
at start, and port 0 gives a free port (tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import h11
import orjson
import uvicorn
from starlette.routing import BaseRoute
from uvicorn.protocols.http.h11_impl import H11Protocol

from rarebird.definitions.service import HttpConfig
from rarebird.errors import RarebirdError
from rarebird.serve.http_app import Handlers, HttpLimits, create_app
from rarebird.serve.ingest import Batch
from rarebird.serve.linger import LingeringTransport
from rarebird.serve.metrics import ServeMetrics

LogFn = Callable[..., None]


def _raw_answer(status: int, reason: str, doc: dict[str, Any]) -> bytes:
    body = orjson.dumps(doc) + b"\n"
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n"
    )
    if status == 503:
        head += "retry-after: 1\r\n"
    return head.encode() + b"\r\n" + body


@dataclass(frozen=True)
class Guard:
    """The limits a :class:`GuardedH11Protocol` enforces, and whom it tells when it refuses."""

    limits: HttpLimits
    on_refused: Callable[[str], None]


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header deadline and a connection limit (see the module
    doc). The limits are class attributes, set by :func:`guarded_protocol`."""

    guard: ClassVar[Guard]
    _linger: LingeringTransport
    _header_timer: asyncio.TimerHandle | None = None
    _refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)  # a TCP connection's
        if len(self.connections) >= self.guard.limits.max_connections:
            # refused before uvicorn counts it: a connection being turned away must not make
            # uvicorn's own concurrency limit answer 503 to a request on a held one
            self._refused = True
            self.transport = transport
            self.guard.on_refused("connections")
            transport.write(_raw_answer(503, "Service Unavailable",
                                        {"error": "too many connections; try again later"}))  # fmt: skip
            transport.close()
            return
        self._linger = LingeringTransport(
            transport, lambda: self.conn.their_state is h11.SEND_BODY,
            max_bytes=self.guard.limits.max_body_bytes,
        )  # fmt: skip
        super().connection_made(self._linger)
        self._arm_header_deadline()

    def data_received(self, data: bytes) -> None:
        if not self._refused and not self._linger.discard(data):
            super().data_received(data)

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_timer = self.loop.call_later(
            self.guard.limits.header_timeout, self._headers_late
        )

    def _disarm_header_deadline(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        self.guard.on_refused("header_timeout")
        self.transport.write(_raw_answer(408, "Request Timeout", {
            "error": f"the request headers were not received within "
                     f"{self.guard.limits.header_timeout:g}s"}))  # fmt: skip
        self.transport.close()

    def handle_events(self) -> None:
        super().handle_events()
        if self._header_timer is not None and self.conn.their_state is not h11.IDLE:
            self._disarm_header_deadline()  # the headers are in: the body has its own deadline

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_header_deadline()  # a kept-alive connection: the next request's headers

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        if not self._refused:
            if self._linger.lingering:  # the client went first: stop the linger's timer
                self._linger.abort()
            super().connection_lost(exc)

    def eof_received(self) -> None:
        if self._refused:
            return
        if self._linger.lingering:
            self._linger.peer_closed()
            return
        super().eof_received()


def guarded_protocol(
    limits: HttpLimits, on_refused: Callable[[str], None]
) -> type[GuardedH11Protocol]:
    """A :class:`GuardedH11Protocol` with these limits (uvicorn builds one per connection)."""
    return type(
        "RarebirdH11Protocol", (GuardedH11Protocol,),
        {"guard": Guard(limits, on_refused)},
    )  # fmt: skip


#: Descriptors kept for the service itself: the store (database, WAL, shared memory, a
#: journal), followed files and their rotations, a chunk's memfd, the log, the event loop's.
FD_RESERVE = 64
#: A burst is accepted, then refused over the limit a few loop turns later: at most this many
#: bursts hold descriptors at once (accept, task step, connection_made, close).
BURSTS_IN_FLIGHT = 4
#: The kernel's queue of connections waiting for accept (independent of the burst).
LISTEN_QUEUE = 1024


@dataclass(frozen=True)
class FdBudget:
    """How many connections one accept wake-up takes, and how many are held at most."""

    accept_burst: int
    max_connections: int
    limit: int | None  # RLIMIT_NOFILE's soft limit (None: unlimited)
    clamped: bool  # max_connections was lowered to fit


def open_fds() -> int:
    """Descriptors open in this process now (0 where /proc is absent)."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def fd_budget(
    max_connections: int, *, limit: int | None = None, used: int | None = None
) -> FdBudget:
    """The accept burst and connection limit that fit under ``RLIMIT_NOFILE`` (see the module
    doc): ``max_connections + BURSTS_IN_FLIGHT * burst + FD_RESERVE + used <= limit``."""
    if limit is None:
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        limit = None if soft == resource.RLIM_INFINITY else int(soft)
    if limit is None:
        return FdBudget(LISTEN_QUEUE, max_connections, None, clamped=False)
    spare = limit - (open_fds() if used is None else used) - FD_RESERVE
    floor_burst = 8
    allowed = max(1, spare - BURSTS_IN_FLIGHT * floor_burst)
    conns = min(max_connections, allowed)
    burst = max(1, min(LISTEN_QUEUE, (spare - conns) // BURSTS_IN_FLIGHT))
    return FdBudget(burst, conns, limit, clamped=conns < max_connections)


class _ToLog(logging.Handler):
    """uvicorn's own log lines (and asyncio's, e.g. out of file descriptors) as JSON log lines;
    a message repeated within a second is counted, not written again (``repeated``)."""

    def __init__(self, log: LogFn) -> None:
        super().__init__(logging.WARNING)
        self._log = log
        self._last: tuple[str, str] | None = None
        self._last_at = 0.0
        self._repeats = 0

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):  # a log line must never take the server down
            level = "warning" if record.levelno < logging.ERROR else "error"
            message = record.getMessage()[:500]
            now = time.monotonic()
            if self._last == (level, message) and now - self._last_at < 1.0:
                self._repeats += 1
                return
            self.flush()
            self._last, self._last_at = (level, message), now
            self._log(level, "http_server", message=message)

    def flush(self) -> None:
        if self._repeats and self._last is not None:
            level, message = self._last
            self._log(level, "http_server", message=message, repeated=self._repeats)
        self._repeats = 0


class HttpServer:
    """uvicorn serving ``app`` on ``address`` in a thread; ``start``, ``stop``."""

    def __init__(
        self,
        address: tuple[str, int],
        app: Callable[..., Awaitable[None]],
        limits: HttpLimits,
        *,
        log: LogFn,
        on_refused: Callable[[str], None] = lambda reason: None,
    ) -> None:
        host, port = address
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(1024)
            sock.set_inheritable(False)
        except OSError as exc:
            raise RarebirdError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self._sock = sock
        self.host, self.port = str(sock.getsockname()[0]), int(sock.getsockname()[1])
        self._handler = _ToLog(log)
        self._propagate: dict[str, bool] = {}
        for name in ("uvicorn.error", "asyncio"):
            logger = logging.getLogger(name)
            logger.addHandler(self._handler)
            self._propagate[name] = logger.propagate
            logger.propagate = False  # stderr holds JSON log lines only
        self.budget = fd_budget(limits.max_connections)
        if self.budget.clamped:
            log("warning", "http_max_connections_lowered", configured=limits.max_connections,
                max_connections=self.budget.max_connections, open_files_limit=self.budget.limit,
                message="RLIMIT_NOFILE is too low for max_connections with the service's own "
                        "files; raise it (ulimit -n, LimitNOFILE=) or lower [http] "
                        "max_connections")  # fmt: skip
            limits = replace(limits, max_connections=self.budget.max_connections)
        self.limits = limits
        config = uvicorn.Config(
            app, http=guarded_protocol(limits, on_refused), lifespan="off", log_config=None,
            access_log=False, server_header=False, limit_concurrency=limits.max_connections + 1,
            timeout_keep_alive=max(1, round(limits.keep_alive)), backlog=self.budget.accept_burst,
            timeout_graceful_shutdown=5, h11_max_incomplete_event_size=16 * 1024,
        )  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="rarebird-http",
            daemon=True,
        )  # fmt: skip
        self._thread.start()
        # asyncio listens with the burst as the kernel's queue too: give the queue its length
        # back once the server is up (a re-listen only resizes the queue)
        deadline = time.monotonic() + 10
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)
        with contextlib.suppress(OSError):
            self._sock.listen(LISTEN_QUEUE)

    def stop(self) -> None:
        """Stop accepting; requests in progress get a few seconds to finish."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._sock.close()
        self._handler.flush()
        for name, propagate in self._propagate.items():
            logger = logging.getLogger(name)
            logger.removeHandler(self._handler)
            logger.propagate = propagate


def open_http(
    http: HttpConfig,
    *,
    submit: Callable[[Batch], str],
    health: Callable[[], tuple[int, dict[str, Any]]],
    metrics_text: Callable[[], str],
    metrics: ServeMetrics,
    log: LogFn,
    routes: Sequence[BaseRoute] = (),
) -> HttpServer:
    """The service's HTTP server from its ``[http]`` configuration, started."""
    token = http.resolve_token()
    limits = HttpLimits(
        max_body_bytes=http.max_body_bytes, max_events=http.max_events,
        header_timeout=http.header_timeout.total_seconds(),
        body_timeout=http.body_timeout.total_seconds(), max_connections=http.max_connections,
        max_inflight_bytes=http.max_inflight_bytes,
    )  # fmt: skip
    handlers = Handlers(
        token=token, submit=submit, health=health, metrics=metrics_text,
        count=lambda endpoint, code: metrics.http_requests.inc(path=endpoint, code=str(code)),
        log=log,
    )  # fmt: skip
    server = HttpServer(
        http.address, create_app(handlers, limits, routes=routes), limits, log=log,
        on_refused=lambda reason: metrics.http_refused.inc(reason=reason),
    )  # fmt: skip
    server.start()
    log("info", "http_listening", host=server.host, port=server.port, ingest=token is not None,
        max_connections=server.limits.max_connections, accept_burst=server.budget.accept_burst, header_timeout=limits.header_timeout,
        body_timeout=limits.body_timeout)  # fmt: skip
    return server
