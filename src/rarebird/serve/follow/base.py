"""What a follower hands out and promises: :class:`Chunk` s of complete records (cut by a
framing function) and the :class:`Follower` protocol the service polls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

#: A record longer than this is handed over as it is (the parser reports it as too long).
MAX_RECORD_BYTES = 16 * 1024 * 1024

#: ``framer(data, final, idle) -> bytes`` of ``data`` that hold complete records. ``final``:
#: the file will not grow again; ``idle``: it has not grown for a while.
Framer = Callable[[bytes, bool, bool], int]
#: ``log(level, event, **fields)``
LogFn = Callable[..., None]


def line_framer(data: bytes, final: bool, idle: bool) -> int:
    """Complete lines; everything once the file is final.

    >>> line_framer(b'{"a": 1}\\n{"b"', False, False), line_framer(b'{"b"', True, False)
    (9, 4)
    """
    if final:
        return len(data)
    return data.rfind(b"\n") + 1


@dataclass(frozen=True, slots=True)
class Chunk:
    """Complete records read from one file (or pipe)."""

    #: the follower's name (the followed path, or the configured name)
    source: str
    #: the file read, as last seen (a rotated file has its new name)
    path: str
    #: stable id of the file while it exists: ``dev:ino`` (``-`` for stdin)
    stream_id: str
    data: bytes
    #: 1-based number of the chunk's first line in the file
    first_line: int


class Follower(Protocol):
    """What the service needs of a followed input."""

    @property
    def label(self) -> str: ...

    def poll(self, budget: int, now: float, stream_id: str | None = None) -> list[Chunk]: ...

    def behind(self) -> list[str]:
        """Ids of the files not yet read to their end since the start (catch-up)."""
        ...

    def remaining_bytes(self) -> int:
        """Bytes known to be waiting (for progress reports)."""
        ...

    def to_state(self) -> dict[str, Any]: ...

    def close(self) -> None: ...
