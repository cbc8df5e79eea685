"""Run times and Kibana's range tuples (getRuleRangeTuples) for one execution."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rarebird.rules.schedule import align_down, align_up, humanize, plan_ranges, run_times
from tests.rule_support import at, rule


def test_normal_run_queries_the_lookback() -> None:
    plan = plan_ranges(rule(), at(60), at(45))
    assert [(r.start, r.end, r.max_signals) for r in plan.ranges] == [(at(15), at(60), 100)]
    assert plan.remaining_gap == timedelta(0)
    assert plan.catchup == 0


@pytest.mark.parametrize(
    ("previous", "catchup", "gap_minutes"),
    [
        (None, 0, 0),  # first run ever
        (45, 0, 0),  # on time: gap = 15m - 45m < 0
        (15, 0, 0),  # one run missed: gap = 0
        (0, 1, 0),  # gap = 60m - 45m = 15m: one range back
        (-30, 3, 0),  # gap 45m
        (-60, 4, 15),  # gap 75m: ceil(75/15) = 5, capped at 4, 15m not queried
        (-300, 4, 255),  # gap 5h15m
    ],
)
def test_catch_up_count_and_gap(previous: int | None, catchup: int, gap_minutes: int) -> None:
    prev = None if previous is None else at(previous)
    plan = plan_ranges(rule(), at(60), prev)
    assert plan.catchup == catchup
    assert plan.remaining_gap == timedelta(minutes=gap_minutes)
    # catch-up ranges are the normal one shifted back by whole intervals, oldest first
    for k, rng in enumerate(reversed(plan.ranges)):
        assert (rng.start, rng.end) == (at(15 - 15 * k), at(60 - 15 * k))


def test_alignment() -> None:
    fifteen = timedelta(minutes=15)
    t = datetime(2026, 3, 2, 12, 7, 30, tzinfo=UTC)
    assert align_up(t, fifteen) == datetime(2026, 3, 2, 12, 15, tzinfo=UTC)
    assert align_down(t, fifteen) == datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    assert align_up(at(0), fifteen) == at(0)
    runs = run_times(t, fifteen)
    assert [next(runs) for _ in range(3)] == [at(15), at(30), at(45)]


def test_humanize_like_moment() -> None:
    assert humanize(timedelta(seconds=30)) == "a few seconds"
    assert humanize(timedelta(seconds=60)) == "a minute"
    assert humanize(timedelta(minutes=4, seconds=5)) == "4 minutes"
    assert humanize(timedelta(minutes=50)) == "an hour"
    assert humanize(timedelta(hours=14, minutes=20)) == "14 hours"
    assert humanize(timedelta(hours=30)) == "a day"
    assert humanize(timedelta(days=3)) == "3 days"
