"""Jobs in the store: each job's state (model, normalisers, counts) as versioned JSON, and
what the job hands over (results, kept events, renormalised scores), written with it.

:func:`load_job` resumes a job from the store (or starts it fresh); :func:`save_job` writes
its output and state in one transaction, :func:`write_job_output` the output alone (to bound
memory on long inputs; safe at any time, as result ids are Elastic's and events are keyed by
content).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from rarebird.clock import SYSTEM_CLOCK
from rarebird.definitions import JobConfig
from rarebird.errors import StateError
from rarebird.job import STATE_VERSION, AnomalyJob, JobOutput
from rarebird.job.anomaly import RENORMALIZE_INTERVAL_S
from rarebird.store.events import write_events
from rarebird.store.results import apply_score_updates, window_docs, write_results
from rarebird.store.sqlite import Store
from rarebird.timeutil import iso


@dataclass(frozen=True, slots=True)
class SavedState:
    """A job's saved state: its format version and the JSON text."""

    version: int
    text: str


def load_job_state(store: Store, job_id: str) -> SavedState | None:
    row = store.one("SELECT version, state FROM job_state WHERE job_id = ?", (job_id,))
    return None if row is None else SavedState(int(row[0]), str(row[1]))


def save_job_state(store: Store, job_id: str, version: int, text: str, updated: str) -> None:
    with store.transaction():
        store.execute(
            "INSERT INTO job_state (job_id, version, state, updated) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(job_id) DO UPDATE SET version = excluded.version, "
            "state = excluded.state, updated = excluded.updated",
            (job_id, version, text, updated),
        )


def delete_job_state(store: Store, job_id: str) -> None:
    with store.transaction():
        store.execute("DELETE FROM job_state WHERE job_id = ?", (job_id,))


def job_ids(store: Store) -> list[str]:
    """The jobs that have state in the store, by id."""
    return [str(r[0]) for r in store.all("SELECT job_id FROM job_state ORDER BY job_id")]


def result_job_ids(store: Store) -> list[str]:
    """The jobs that have results in the store (a job may have results and no state after a
    revert to an empty model)."""
    rows = store.all("SELECT DISTINCT job_id FROM results WHERE result_type = 'bucket'")
    return sorted(str(r[0]) for r in rows)


class StoreResultsWindow:
    """The store as the job's :class:`~rarebird.job.ResultsWindow` (renormalisation)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def window_docs(self, job_id: str, start_ms: int) -> dict[str, dict[str, Any]]:
        return window_docs(self.store, job_id, start_ms)


def load_job(
    store: Store,
    config: JobConfig,
    *,
    keep_events: bool = True,
    renormalize: bool = False,
    renormalize_every_s: float | None = RENORMALIZE_INTERVAL_S,
) -> AnomalyJob:
    """Resume the job's state from the store, or start it fresh."""
    window = StoreResultsWindow(store)
    saved = load_job_state(store, config.job_id)
    if saved is None:
        return AnomalyJob(config, keep_events=keep_events, renormalize=renormalize, window=window,
                          renormalize_every_s=renormalize_every_s)  # fmt: skip
    if saved.version != STATE_VERSION:
        raise StateError(
            f"{store.path}: job {config.job_id!r} state is version {saved.version}; this "
            f"rarebird reads version {STATE_VERSION}"
        )
    return AnomalyJob.restore(
        config, orjson.loads(saved.text), keep_events=keep_events, renormalize=renormalize,
        window=window, renormalize_every_s=renormalize_every_s,
    )  # fmt: skip


def write_job_output(store: Store, job_id: str, output: JobOutput) -> None:
    """Write results, kept events and renormalised scores (one transaction)."""
    if not output:
        return
    with store.transaction():
        write_results(store, output.results)
        if output.events:
            write_events(store, job_id, output.events)
        apply_score_updates(store, ((u.doc_id, u.score, u.doc) for u in output.score_updates))


def save_job(store: Store, job: AnomalyJob) -> None:
    """Write the job's output and its state in one transaction."""
    state = orjson.dumps(job.to_state()).decode()
    with store.transaction():
        write_job_output(store, job.config.job_id, job.take_output())
        save_job_state(store, job.config.job_id, STATE_VERSION, state, iso(SYSTEM_CLOCK.now()))


def flush_job(store: Store, job: AnomalyJob) -> None:
    """Write what the job has produced so far, without its state."""
    write_job_output(store, job.config.job_id, job.take_output())
