"""A replay's rule runs share commits (``Engine.replay``: one per ``BATCH_SECONDS`` of wall
clock, and one at once after a run that changed alerts), yet the store is always at one commit:
the rule's last run, its alerts, the results and the job's state of the same moment. A replay
that fails part-way leaves exactly that, and an output never receives an alert the store could
still roll back.

The events are the rule tests' three days (``tests/rule_support.py``): service accounts every
15 minutes, then ``mallory``'s first ``ss`` in the last bucket, which alerts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

import rarebird.run.engine as engine_module
from rarebird.alerts.model import Alert
from rarebird.definitions import load_datafeed, load_job
from rarebird.definitions.rule import load_rule
from rarebird.events import ProcessEvent
from rarebird.run.engine import Engine
from rarebird.run.readahead import READ_AHEAD
from rarebird.sources import SourceOptions, open_source
from rarebird.store import open_store
from rarebird.store.alerts import list_alerts
from rarebird.store.jobs import load_job_state
from tests.rule_support import MALLORY_BUCKET, scenario_events, write_ndjson


class Interrupted(Exception):
    pass


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> list[ProcessEvent]:
    path = write_ndjson(tmp_path_factory.mktemp("replay") / "events.ndjson", scenario_events())
    return list(open_source(str(path), "ecs", SourceOptions()))


def _engine(path: Path) -> Engine:
    return Engine(open_store(str(path)), load_job(), load_datafeed(), load_rule())


def _until(events: Sequence[ProcessEvent], n: int) -> Iterator[ProcessEvent]:
    yield from events[:n]
    raise Interrupted


def _reference(tmp_path: Path, events: list[ProcessEvent]) -> dict[datetime, dict[str, Any]]:
    """The job's statistics after each rule run of an uninterrupted replay."""
    engine = _engine(tmp_path / "whole.db")
    after: dict[datetime, dict[str, Any]] = {}
    engine.replay(
        events, on_run=lambda run: after.update({run.started_at: asdict(engine.job.stats)})
    )
    engine.store.close()
    return after


def _stored(path: Path) -> tuple[datetime | None, dict[str, Any] | None, list[str]]:
    """The rule's last run, the job's saved statistics and the alerts' users, as committed."""
    engine = _engine(path)
    try:
        saved = load_job_state(engine.store, load_job().job_id)
        stats = None if saved is None else orjson.loads(saved.text)["stats"]
        users = [a.values("user.name")[0] for a in list_alerts(engine.store)]
        return engine.last_rule_run(), stats, users
    finally:
        engine.store.close()


@pytest.mark.parametrize("batch_seconds", [0.0, 1e9])
@pytest.mark.parametrize("share", [0.5, 0.999])
@pytest.mark.parametrize("ahead", [1, READ_AHEAD])
def test_a_replay_that_fails_part_way_leaves_one_commit(
    tmp_path: Path,
    events: list[ProcessEvent],
    monkeypatch: pytest.MonkeyPatch,
    batch_seconds: float,
    share: float,
    ahead: int,
) -> None:
    """Also when events are read ahead of the job (``ahead``, as ``job run`` reads files): the
    events read before the input failed are all offered first, so the outcome is the same."""
    reference = _reference(tmp_path, events)
    monkeypatch.setattr(engine_module, "BATCH_SECONDS", batch_seconds)
    engine = _engine(tmp_path / "cut.db")
    with pytest.raises(Interrupted):
        engine.replay(_until(events, int(len(events) * share)), ahead=ahead)
    engine.store.close()

    last, stats, users = _stored(tmp_path / "cut.db")
    alerted_at = MALLORY_BUCKET.replace(minute=30)  # the run that raises mallory's alert
    if batch_seconds == 0.0:  # a commit after every run: the store is at the last one
        assert last is not None
        assert last == max(r for r in reference if r <= last)
        assert stats == reference[last]
        assert users == (["mallory"] if last >= alerted_at else [])
    elif share == 0.5:  # one batch, never committed: nothing at all
        assert (last, stats, users) == (None, None, [])
    else:  # one batch, committed only by the run that changed alerts
        assert last == alerted_at
        assert stats == reference[alerted_at]
        assert users == ["mallory"]


def test_an_output_receives_an_alert_only_once_it_is_committed(
    tmp_path: Path, events: list[ProcessEvent], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "BATCH_SECONDS", 1e9)
    path = tmp_path / "store.db"
    seen: list[tuple[str, list[str]]] = []

    class Reader:
        """An output that looks in the store through a connection of its own."""

        def write(self, alerts: Sequence[Alert]) -> None:
            other = open_store(str(path))
            try:
                stored = [a.values("user.name")[0] for a in list_alerts(other)]
            finally:
                other.close()
            seen.extend((a.values("user.name")[0], stored) for a in alerts)

    engine = Engine(
        open_store(str(path)), load_job(), load_datafeed(), load_rule(), sinks=[Reader()]
    )
    report = engine.replay(events)
    engine.store.close()
    assert [a.values("user.name") for a in report.new_alerts] == [["mallory"]]
    assert seen == [("mallory", ["mallory"])]


def test_batched_and_committed_runs_store_the_same(
    tmp_path: Path, events: list[ProcessEvent], monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = []
    for name, seconds, ahead in (("each.db", 0.0, 1), ("one.db", 1e9, 1), ("ahead.db", 1e9, 7)):
        monkeypatch.setattr(engine_module, "BATCH_SECONDS", seconds)
        engine = _engine(tmp_path / name)
        engine.replay(events, ahead=ahead)
        engine.store.close()
        stored.append(_stored(tmp_path / name))
    assert stored[0] == stored[1] == stored[2]
    assert stored[0][2] == ["mallory"]
