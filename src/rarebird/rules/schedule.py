"""When the rule runs, and which time ranges one execution queries (Kibana's catch-up).

Kibana's task manager runs a rule every ``interval``; each execution queries
``[now + from, now + to]`` (``now-45m`` .. ``now`` here), so runs overlap. When executions were
missed, the next one adds *catch-up* ranges (``getRuleRangeTuples`` in
``rule_types/utils/utils.ts``): with ``gap = (started_at - previous_started_at) - (to - from)``,
``min(ceil(gap / interval), MAX_RULE_GAP_RATIO = 4)`` extra ranges, each the normal one shifted
back by one more interval. What even that does not cover is reported as a gap ("... were not
queried between this rule execution and the last execution, so signals may have been missed").
A rule's ``max_signals`` above the alerting framework's ``run.alerts.max`` (default 1000) is
capped with a warning.

In replay, rarebird aligns run times to multiples of ``interval`` since the epoch (as the job
aligns buckets to multiples of ``bucket_span``), so a replay split over several invocations
runs the rule at the same instants as one long replay would.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from rarebird.definitions.rule import RuleConfig
from rarebird.timeutil import EPOCH

MAX_RULE_GAP_RATIO = 4
#: Kibana's ``xpack.alerting.rules.run.alerts.max`` default
KIBANA_MAX_ALERTS_PER_RUN = 1000


@dataclass(frozen=True, slots=True)
class RuleRange:
    """One time range an execution queries: anomaly bucket ``timestamp`` in [start, end]."""

    start: datetime
    end: datetime
    max_signals: int


@dataclass(frozen=True, slots=True)
class RangePlan:
    """What one execution at ``started_at`` queries, oldest range first."""

    started_at: datetime
    ranges: tuple[RuleRange, ...]
    remaining_gap: timedelta
    warnings: tuple[str, ...] = ()

    @property
    def catchup(self) -> int:
        return len(self.ranges) - 1


def _js_round(x: float) -> int:
    return math.floor(x + 0.5)


def humanize(delta: timedelta) -> str:
    """moment.js's ``duration.humanize()`` with its default thresholds, as Kibana prints gaps.

    >>> humanize(timedelta(minutes=4, seconds=5)), humanize(timedelta(minutes=90))
    ('4 minutes', '2 hours')
    """
    s = abs(delta.total_seconds())
    seconds, minutes, hours = _js_round(s), _js_round(s / 60), _js_round(s / 3600)
    days = _js_round(s / 86400)
    months = _js_round(s / 86400 * 4800 / 146097)
    years = _js_round(s / 86400 * 400 / 146097)
    if seconds <= 44:
        return "a few seconds"
    if minutes <= 1:
        return "a minute"
    if minutes < 45:
        return f"{minutes} minutes"
    if hours <= 1:
        return "an hour"
    if hours < 22:
        return f"{hours} hours"
    if days <= 1:
        return "a day"
    if days < 26:
        return f"{days} days"
    if months <= 1:
        return "a month"
    if months < 11:
        return f"{months} months"
    return "a year" if years <= 1 else f"{years} years"


def gap_message(remaining: timedelta) -> str:
    ms = int(remaining.total_seconds() * 1000)
    return (
        f"{humanize(remaining)} ({ms}ms) were not queried between this rule execution and the "
        "last execution, so signals may have been missed. Consider increasing your look behind "
        "time or adding more Kibana instances"
    )


def plan_ranges(
    rule: RuleConfig,
    started_at: datetime,
    previous_started_at: datetime | None,
    *,
    max_alerts_per_run: int = KIBANA_MAX_ALERTS_PER_RUN,
) -> RangePlan:
    """Kibana's ``getRuleRangeTuples`` for one execution."""
    warnings: list[str] = []
    max_signals = rule.max_signals
    if max_signals > max_alerts_per_run:
        warnings.append(
            f"The rule's max alerts per run setting ({max_signals}) is greater than the Kibana "
            f"alerting limit ({max_alerts_per_run}). The rule will only write a maximum of "
            f"{max_alerts_per_run} alerts per rule run."
        )
        max_signals = max_alerts_per_run
    start, end = started_at - rule.lookback, started_at
    ranges = [RuleRange(start, end, max_signals)]
    gap = timedelta(0)
    if previous_started_at is not None:
        gap = (started_at - previous_started_at) - (end - start)
    catchup = 0
    if gap > timedelta(0) and rule.interval > timedelta(0):
        catchup = min(math.ceil(gap / rule.interval), MAX_RULE_GAP_RATIO)
    for k in range(1, catchup + 1):
        shift = rule.interval * k
        ranges.append(RuleRange(start - shift, end - shift, max_signals))
    remaining = max(gap - rule.interval * catchup, timedelta(0))
    if remaining > timedelta(0):
        warnings.append(gap_message(remaining))
    return RangePlan(started_at, tuple(reversed(ranges)), remaining, tuple(warnings))


def align_up(when: datetime, interval: timedelta) -> datetime:
    """The first multiple of ``interval`` since the epoch at or after ``when``."""
    step = interval.total_seconds()
    n = math.ceil(round((when - EPOCH).total_seconds() / step, 9))
    return EPOCH + timedelta(seconds=n * step)


def align_down(when: datetime, interval: timedelta) -> datetime:
    step = interval.total_seconds()
    n = math.floor(round((when - EPOCH).total_seconds() / step, 9))
    return EPOCH + timedelta(seconds=n * step)


def run_times(first: datetime, interval: timedelta) -> Iterator[datetime]:
    """Run instants from ``first`` (aligned up), every ``interval``, forever."""
    t = align_up(first, interval)
    while True:
        yield t
        t += interval
