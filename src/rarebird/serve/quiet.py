"""Sources that go quiet: a source (an input, or an HTTP sender) that sent nothing for
``quiet_after`` is reported (log ``source_quiet``, metric ``rarebird_source_quiet``, a gap in
the store) until it sends again (``source_resumed``, the gap closed)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from rarebird.clock import Clock
from rarebird.serve.inputs import Activity
from rarebird.serve.metrics import ServeMetrics
from rarebird.timeutil import from_epoch_ms, to_epoch_ms, to_epoch_s

LogFn = Callable[..., None]
#: ``record_gap(source, start_ms, end_ms)``: end None while still quiet
GapFn = Callable[[str, int, int | None], None]


class QuietSources:
    """When each source last sent data, and which are quiet."""

    def __init__(self, clock: Clock, metrics: ServeMetrics, log: LogFn, record_gap: GapFn) -> None:
        self.clock = clock
        self.metrics = metrics
        self.log = log
        self.record_gap = record_gap
        self.activity: dict[str, Activity] = {}

    def watch(self, label: str) -> None:
        """Start watching a source (as if it had just sent data)."""
        self.activity[label] = Activity(self.clock.monotonic())

    def active(self, label: str, mono: float) -> None:
        """The source sent data at ``mono``."""
        act = self.activity.get(label)
        if act is None:
            act = self.activity[label] = Activity(mono)
        act.last_data = mono
        if act.quiet_since_ms is not None:
            self._back(label, act)

    def check(self, mono: float, quiet_after: timedelta) -> None:
        """Report the sources that have just gone quiet."""
        limit = quiet_after.total_seconds()
        for label, act in self.activity.items():
            if act.quiet_since_ms is None and mono - act.last_data >= limit:
                since = to_epoch_s(self.clock.now()) - (mono - act.last_data)
                act.quiet_since_ms = int(since * 1000)
                self.record_gap(label, act.quiet_since_ms, None)
                self.metrics.source_quiet.set(1, source=label)
                self.log("warning", "source_quiet", source=label,
                         since=from_epoch_ms(act.quiet_since_ms),
                         message="Datafeed has been retrieving no data for a while")  # fmt: skip

    def quiet_since(self) -> dict[str, int | None]:
        return {label: a.quiet_since_ms for label, a in self.activity.items()}

    def _back(self, label: str, act: Activity) -> None:
        start = act.quiet_since_ms
        assert start is not None
        act.quiet_since_ms = None
        end = to_epoch_ms(self.clock.now())
        self.record_gap(label, start, end)
        self.metrics.source_quiet.set(0, source=label)
        self.log("info", "source_resumed", source=label, quiet_since=from_epoch_ms(start),
                 quiet_seconds=round((end - start) / 1000, 1))  # fmt: skip
