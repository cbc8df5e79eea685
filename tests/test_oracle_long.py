"""Long many-user scenarios of rarebird's own: properties, not engine numbers.

These scenarios have **no reference from Elastic's engine** (it could not be built here); the
engine-exact checks are in ``test_oracle.py`` and ``test_oracle_state.py``. What is held here is
what must hold whatever the engine says, over weeks of many users with cadences, newcomers,
a returning user and buckets of more than 13 and more than 64 users (where the engine's result
order changes shape): scores stay in 0-100 and are deterministic, a stopped and resumed job
gives exactly the uninterrupted results, the normalisers stay small and consistent, and the
record normaliser learns the bucket's users in the engine's order.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rarebird.definitions import load_job
from rarebird.detectors.aggregate import Normalizers
from rarebird.detectors.boost_order import unordered_order
from rarebird.detectors.normalize import ScoreNormalizer
from rarebird.events import ProcessEvent
from rarebird.job import AnomalyJob
from rarebird.store import open_store
from rarebird.store.jobs import load_job as load_stored_job
from rarebird.store.jobs import save_job
from rarebird.store.results import search_results

T0 = datetime(2026, 2, 2, tzinfo=UTC)
SPAN = timedelta(minutes=15)
HOSTS = [f"host-{i:02d}" for i in range(1, 13)]
COMMANDS = [("ss", "ss -s"), ("netstat", "netstat -tulpn"), ("route", "route -n"),
            ("showmount", "showmount -a")]  # fmt: skip


def _event(at: datetime, user: str, rng: random.Random) -> ProcessEvent:
    name, args = rng.choice(COMMANDS)
    return ProcessEvent(timestamp=at, user_name=user, process_name=name, event_type=("start",),
                        host_name=rng.choice(HOSTS), host_os_type="linux",
                        process_args=tuple(args.split()))  # fmt: skip


def scenario(seed: int, days: int, occasional: int) -> list[ProcessEvent]:
    """Service accounts in most buckets; occasional users daily, every few days or weekly at
    their own hour; newcomers on days 2, 9 and 16; a user back after 20 days; and, on two days,
    a fleet-wide change when 80 users log in within the same quarter hour."""
    rng = random.Random(seed)
    buckets = days * 96
    events: list[tuple[datetime, str]] = []
    for svc in ("svc_monitor", "nagios", "zabbix", "svc_backup"):
        for b in range(buckets):
            if rng.random() < 0.85:
                events.extend((T0 + b * SPAN + timedelta(seconds=rng.randrange(900)), svc)
                              for _ in range(rng.randint(1, 3)))  # fmt: skip
    for i in range(occasional):
        every = rng.choice([1, 1, 2, 3, 7])
        hour = rng.randrange(24)
        start = rng.randrange(every)
        for day in range(start, days, every):
            if rng.random() < 0.8:
                at = T0 + timedelta(days=day, hours=hour, seconds=rng.randrange(3600))
                events.append((at, f"user{i:03d}"))
    for day, who in ((2, "intern"), (9, "contractor"), (16, "auditor")):
        for d in range(day, days, 2):
            events.append((T0 + timedelta(days=d, hours=10, minutes=rng.randrange(60)), who))
    events.append((T0 + timedelta(days=1, hours=9), "returning"))
    events.append((T0 + timedelta(days=min(days - 1, 21), hours=9), "returning"))
    for day in (5, days - 3):
        at = T0 + timedelta(days=day, hours=14)
        events.extend((at + timedelta(seconds=rng.randrange(900)), f"fleet{j:02d}")
                      for j in range(80))  # fmt: skip
    events.sort()
    return [_event(at, user, rng) for at, user in events]


def _run(events: list[ProcessEvent], **options: Any) -> tuple[AnomalyJob, list[Any]]:
    job = AnomalyJob(load_job(), **options)
    results = [r for e in events for r in job.feed(e)]
    results.extend(job.finish())
    return job, results


@pytest.fixture(scope="module")
def long_run() -> tuple[list[ProcessEvent], AnomalyJob, list[Any]]:
    events = scenario(seed=15, days=24, occasional=110)
    job, results = _run(events)
    return events, job, results


def test_scores_are_bounded_and_deterministic(long_run: tuple) -> None:
    events, _, results = long_run
    records = [r for res in results for r in res.records]
    assert len(records) > 50
    for res in results:
        assert 0.0 <= res.bucket.anomaly_score <= 100.0
        for r in res.records:
            assert 0.0 <= r.record_score <= 100.0
            assert r.record_score == r.initial_record_score
        for i in res.influencers:
            assert 0.0 <= i.influencer_score <= 100.0
    _, again = _run(events)
    assert [r.to_doc() for res in again for r in res.records] == [r.to_doc() for r in records]
    assert [res.bucket.to_doc() for res in again] == [res.bucket.to_doc() for res in results]


def test_newcomers_and_the_fleet_change_are_seen(long_run: tuple) -> None:
    _, _, results = long_run
    by_user: dict[str, float] = {}
    for res in results:
        for r in res.records:
            by_user[r.by_field_value] = max(by_user.get(r.by_field_value, 0.0), r.record_score)
    assert len({"intern", "contractor", "auditor"} & set(by_user)) >= 2
    fleet = [res for res in results if len(res.records) >= 60]
    assert len(fleet) == 2  # the two fleet-wide buckets


def _check_normalizer(norm: ScoreNormalizer) -> None:
    for digest in (norm.low, norm.high):
        nodes = digest.nodes()
        assert sum(count for _, _, count in nodes) == digest.n
        assert len(nodes) <= 3 * digest.k
    assert 0 <= norm.high_percentile_count <= max(norm.low.n, 1)
    assert len(norm.max_scores) <= 200
    again = ScoreNormalizer.from_state(norm.to_state())
    assert again.to_state() == norm.to_state()


def test_normalisers_stay_small_and_consistent(long_run: tuple) -> None:
    _, job, _ = long_run
    norms: Normalizers = job.normalizers
    assert norms.leaf.low.n > 1000  # the digest has compressed many times
    for norm in norms.all():
        _check_normalizer(norm)


def test_records_are_learnt_in_the_engines_order(
    long_run: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bucket's users reach the record normaliser in Boost's unordered_set order of their
    person ids, also in the 80-user buckets (more than one 64-bucket group)."""
    events, _, _ = long_run
    job = AnomalyJob(load_job())
    learnt: list[list[str]] = []
    age, update = Normalizers.propagate_forward, ScoreNormalizer.update

    def aged(self: Normalizers, buckets: float = 1.0) -> None:
        learnt.append([])
        age(self, buckets)

    def updated(self: ScoreNormalizer, scope: str, score: float) -> bool:
        if self is job.normalizers.leaf:
            learnt[-1].append(scope.rsplit("\x1f", 1)[1])
        return update(self, scope, score)

    monkeypatch.setattr(Normalizers, "propagate_forward", aged)
    monkeypatch.setattr(ScoreNormalizer, "update", updated)
    for e in events:
        job.feed(e)
    job.finish()
    assert len([users for users in learnt if len(users) > 64]) == 2
    assert sum(1 for users in learnt if len(users) > 13) >= 2
    for users in learnt:
        ids = [job.model.person_id(u) for u in users]
        assert ids == unordered_order(sorted(i for i in ids if i is not None))


@pytest.mark.parametrize("cut_day", [0, 11])
def test_resume_equals_uninterrupted(tmp_path, cut_day: int) -> None:
    events = scenario(seed=7, days=14, occasional=60)
    split = T0 + timedelta(days=cut_day, minutes=20)
    parts = [
        [e for e in events if e.timestamp < split],
        [e for e in events if e.timestamp >= split],
    ]

    def stored(parts: list[list[ProcessEvent]], name: str) -> tuple[list, list, list]:
        path = str(tmp_path / name)
        for part in parts:
            with open_store(path) as store:
                job = load_stored_job(store, load_job(), renormalize=True)
                for e in part:
                    job.feed(e)
                save_job(store, job)
        with open_store(path) as store:
            return (
                search_results(store, "record", order="time").hits,
                search_results(store, "bucket", order="time").hits,
                search_results(store, "influencer", order="time").hits,
            )

    split_docs, whole_docs = stored(parts, "split.db"), stored([events], "whole.db")
    for split_kind, whole_kind in zip(split_docs, whole_docs, strict=True):
        assert [i for i, _ in split_kind] == [i for i, _ in whole_kind]
        for (_, a), (_, b) in zip(split_kind, whole_kind, strict=True):
            _same(a, b)


def _same(a: Any, b: Any) -> None:
    """Equal documents, floats to 1e-9: a resumed model sums its masses in another order, so
    scores may differ in the last bits (about 1e-14)."""
    if isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12)
    elif isinstance(a, dict) and isinstance(b, dict):
        assert set(a) == set(b)
        for key in a:
            _same(a[key], b[key])
    elif isinstance(a, list | tuple) and isinstance(b, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _same(x, y)
    else:
        assert a == b
