"""A lingering close: an answer sent before the request body was read to its end still
reaches the client.

When a socket is closed while bytes the client sent are still unread, the kernel answers with
a reset instead of a normal end, and Linux then drops what it had not yet put on the wire of
the answer just written (``tcp_close``: "data was unread"). A client that is refused in the
middle of its body (``413`` body too large, ``408`` too slow, ``429`` overloaded) could thus
get the status line and lose the reason. RFC 9112 section 9.6 ("tear-down", formerly RFC 7230
6.6) describes the remedy HTTP servers use (Apache's and nginx's ``lingering_close``): close
the writing side first, so the answer and a FIN go out in order, keep reading and dropping what
the client still sends for a short while, then close for good.

:class:`LingeringTransport` wraps a connection's transport and does that when its ``close``
is called while the request is still coming (``unread``); otherwise it closes at once. The
linger ends at the client's own end, after ``seconds``, or after ``max_bytes`` dropped, so a
client that never stops sending holds the connection for a bounded time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

#: The longest a refused connection lingers (nginx's ``lingering_timeout`` is 5 s; an answer
#: on loopback or a LAN is acknowledged in milliseconds).
LINGER_SECONDS = 2.0


class LingeringTransport(asyncio.Transport):
    """``inner`` with a lingering :meth:`close` (see the module doc). The protocol hands every
    received chunk to :meth:`discard` first and its end of input to :meth:`peer_closed`."""

    def __init__(
        self,
        inner: asyncio.Transport,
        unread: Callable[[], bool],
        *,
        seconds: float = LINGER_SECONDS,
        max_bytes: int,
    ) -> None:
        super().__init__()
        self._inner = inner
        self._unread = unread
        self._seconds = seconds
        self._left = max_bytes
        self._closing = False
        self._timer: asyncio.TimerHandle | None = None
        self.lingering = False
        self.dropped = 0

    # the lingering close

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self._inner.is_closing() or not self._unread() or not self._inner.can_write_eof():
            self._inner.close()
            return
        self.lingering = True
        self._inner.write_eof()  # the answer, then FIN, in order
        self._inner.resume_reading()  # uvicorn may have paused reading on a large body
        self._timer = asyncio.get_running_loop().call_later(self._seconds, self._finish)

    def discard(self, data: bytes) -> bool:
        """Drop ``data`` if the connection is lingering (True), else leave it to the parser."""
        if not self.lingering:
            return False
        self.dropped += len(data)
        if self.dropped >= self._left:
            self._finish()
        return True

    def peer_closed(self) -> None:
        """The client ended its side: the linger is over."""
        self._finish()

    def _stop_lingering(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.lingering = False

    def _finish(self) -> None:
        self._stop_lingering()
        self._inner.close()

    def abort(self) -> None:
        self._closing = True
        self._stop_lingering()
        self._inner.abort()

    def is_closing(self) -> bool:
        return self._closing or self._inner.is_closing()

    # the rest is the wrapped transport's

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._inner.write(data)

    def write_eof(self) -> None:
        self._inner.write_eof()

    def can_write_eof(self) -> bool:
        return self._inner.can_write_eof()

    def get_write_buffer_size(self) -> int:
        return self._inner.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._inner.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._inner.set_write_buffer_limits(high, low)

    def pause_reading(self) -> None:
        if not self.lingering:
            self._inner.pause_reading()

    def resume_reading(self) -> None:
        self._inner.resume_reading()

    def is_reading(self) -> bool:
        return self._inner.is_reading()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._inner.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._inner.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._inner.get_protocol()
