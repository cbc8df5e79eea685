"""stdin and FIFOs, read without blocking (what was read but not committed cannot be read
again)."""

from __future__ import annotations

import os
import stat
from typing import Any

from rarebird.serve.follow.base import Chunk, Framer, LogFn, line_framer


class StreamFollower:
    """stdin (``-``) or a FIFO, read without blocking."""

    def __init__(self, path: str, *, label: str | None = None, framer: Framer = line_framer,
                 log: LogFn | None = None) -> None:  # fmt: skip
        self.path = path
        self._label = label or path
        self.framer = framer
        self.log: LogFn = log or (lambda *a, **k: None)
        self.partial = b""
        self.line = 0
        self.finished = False
        self._behind = True
        self._keepalive: int | None = None
        if path == "-":
            self.fd = os.dup(0)
        else:
            self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            if stat.S_ISFIFO(os.fstat(self.fd).st_mode):
                # our own writer end: the FIFO never reports end-of-file between writers
                self._keepalive = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        self.regular = stat.S_ISREG(os.fstat(self.fd).st_mode)
        if not self.regular:
            os.set_blocking(self.fd, False)

    @property
    def label(self) -> str:
        return self._label

    def poll(self, budget: int, now: float, stream_id: str | None = None) -> list[Chunk]:
        if self.finished:
            return []
        try:
            new = os.read(self.fd, budget)
        except BlockingIOError:
            self._behind = False
            return []
        except OSError as exc:
            self.log("error", "read_error", source=self.label, error=str(exc))
            new = b""
        eof = not new
        if eof:
            self.finished = True
            self._behind = False
            self.log("info", "stream_ended", source=self.label, lines=self.line)
        else:
            self._behind = len(new) == budget or self.regular
        data = self.partial + new
        cut = self.framer(data, eof, eof)
        self.partial = data[cut:]
        if cut == 0:
            return []
        body = data[:cut]
        first = self.line + 1
        self.line += body.count(b"\n")
        return [Chunk(self.label, self.path, self.path, body, first)]

    def behind(self) -> list[str]:
        return [self.path] if self._behind and not self.finished else []

    def remaining_bytes(self) -> int:
        return 0

    def to_state(self) -> dict[str, Any]:
        return {"kind": "stream", "line": self.line}

    def close(self) -> None:
        os.close(self.fd)
        if self._keepalive is not None:
            os.close(self._keepalive)
