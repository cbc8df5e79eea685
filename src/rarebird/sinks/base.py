"""Stage 7 contract: where alerts go besides the store.

A sink receives alerts after the rule execution that made them was committed to the store:
new ones (``revision == 0``) and changed ones (``revision > 0``: more suppressed duplicates
counted, or a workflow status change). ``write`` may be called many times; ``close`` once.
A sink must not lose an alert silently: it delivers it or raises :class:`SinkError` saying how
many it delivered first. Retries, backoff and dead letters are the delivery's
(:mod:`rarebird.run.delivery`), the same for every sink.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from rarebird.alerts import Alert
from rarebird.errors import RarebirdError


class SinkError(RarebirdError):
    """A sink could not deliver alerts. ``delivered``: how many of the alerts given to the
    ``write`` that failed were delivered before it failed (in order); ``retryable``: whether
    trying again later may work (connection errors, timeouts, 408, 429, 5xx) or the receiver
    refused that alert for good (other 4xx); ``retry_after``: seconds the receiver asked to
    wait."""

    def __init__(
        self,
        message: str,
        *,
        delivered: int = 0,
        retryable: bool = True,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.delivered = delivered
        self.retryable = retryable
        self.retry_after = retry_after


class Sink(Protocol):
    @property
    def name(self) -> str:
        """Where the alerts go, for messages (a path, a URL, ``syslog+udp://host:port``)."""
        ...

    def write(self, alerts: Sequence[Alert]) -> None: ...

    def close(self) -> None: ...
