"""Stage 7 contract: where alerts go besides the store.

A sink receives alerts after the rule execution that made them was committed to the store:
new ones (``revision == 0``) and changed ones (``revision > 0``: more suppressed duplicates
counted, or a workflow status change). ``write`` may be called many times; ``close`` once.
A sink must not lose an alert silently: it delivers it, keeps it for later delivery (the
webhook's dead-letter file), or raises :class:`SinkError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from rarebird.alerts import Alert
from rarebird.errors import RarebirdError


class SinkError(RarebirdError):
    """A sink could not deliver alerts and could not keep them for later either."""


class Sink(Protocol):
    @property
    def name(self) -> str:
        """Where the alerts go, for messages (a path, a URL, ``syslog+udp://host:port``)."""
        ...

    def write(self, alerts: Sequence[Alert]) -> None: ...

    def close(self) -> None: ...
