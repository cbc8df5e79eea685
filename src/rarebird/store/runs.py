"""Runs of a job whose events were not kept (``job run --aggregate``): what ``triage`` and the
alert pages must say is missing from the events they show.

One row per such run in ``runs`` (job, when it ran, its inputs, and a JSON summary: who counted
the events, how many, the data time they span).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson

from rarebird.store.sqlite import Store
from rarebird.timeutil import iso


@dataclass(frozen=True)
class CountedRun:
    """A run whose events were counted where they were scanned and not kept."""

    started: str
    inputs: tuple[str, ...]
    counted_by: str
    events: int
    #: data time of its first and last events (ISO-8601; None when it matched none)
    first: str | None
    last: str | None


def record_counted_run(
    store: Store,
    job_id: str,
    *,
    started: datetime,
    finished: datetime,
    inputs: list[str],
    counted_by: str,
    events: int,
    first: datetime | None,
    last: datetime | None,
) -> None:
    """Note a run whose events were not kept (one transaction, nested in the caller's)."""
    summary = {
        "events_kept": False,
        "counted_by": counted_by,
        "events": events,
        "first": iso(first) if first else None,
        "last": iso(last) if last else None,
    }
    with store.transaction():
        store.execute(
            "INSERT INTO runs (job_id, started, finished, inputs, summary) VALUES (?, ?, ?, ?, ?)",
            (job_id, iso(started), iso(finished), orjson.dumps(inputs).decode(),
             orjson.dumps(summary).decode()),
        )  # fmt: skip


def counted_runs(store: Store, job_id: str) -> list[CountedRun]:
    """The runs of ``job_id`` whose events were not kept, oldest first."""
    out = []
    for started, inputs, summary in store.all(
        "SELECT started, inputs, summary FROM runs WHERE job_id = ? ORDER BY run_id", (job_id,)
    ):
        doc = orjson.loads(str(summary or "{}"))
        if doc.get("events_kept", True):
            continue
        out.append(
            CountedRun(
                started=str(started),
                inputs=tuple(orjson.loads(str(inputs))),
                counted_by=str(doc.get("counted_by", "")),
                events=int(doc.get("events", 0)),
                first=doc.get("first"),
                last=doc.get("last"),
            )
        )
    return out
