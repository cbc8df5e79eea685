"""Structured logs of ``rarebird serve``: one JSON object per line on stderr.

Every line has ``@timestamp`` (from the service's clock), ``level`` and ``event`` (a short
snake_case name such as ``rule_run`` or ``late_events``), then the event's own fields::

    {"@timestamp":"2026-03-01T10:15:00.000Z","level":"info","event":"rule_run","alerts":1,...}
"""

from __future__ import annotations

import sys
import threading
from datetime import datetime
from typing import IO, Any

import orjson

from rarebird.clock import SYSTEM_CLOCK, Clock
from rarebird.sinks.escape import json_unsafe_escaped
from rarebird.timeutil import iso

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    return str(value)


class JsonLog:
    """Writes structured log lines; thread-safe."""

    def __init__(self, stream: IO[bytes] | None = None, *, level: str = "info",
                 clock: Clock = SYSTEM_CLOCK) -> None:  # fmt: skip
        self.stream = stream if stream is not None else sys.stderr.buffer
        self.threshold = LEVELS[level]
        self.clock = clock
        self._lock = threading.Lock()

    def __call__(self, level: str, event: str, **fields: Any) -> None:
        if LEVELS[level] < self.threshold:
            return
        doc = {"@timestamp": iso(self.clock.now()), "level": level, "event": event}
        for key, value in fields.items():
            if value is not None:
                doc[key] = value
        # a user name or an argument in a log line: DEL, C1 controls and bidi overrides as \u
        # escapes too, so `tail -f` of the log never runs a terminal sequence
        data = orjson.dumps(doc, default=_default, option=orjson.OPT_PASSTHROUGH_DATETIME)
        line = json_unsafe_escaped(data) + b"\n"
        with self._lock:
            try:
                self.stream.write(line)
                self.stream.flush()
            except (OSError, ValueError):
                pass  # stderr gone: nothing sensible to do
