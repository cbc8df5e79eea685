"""A scoring profile's state (``--profile quiet``), versioned JSON beside the job's state."""

from __future__ import annotations

from typing import Any

import orjson

from rarebird.clock import SYSTEM_CLOCK
from rarebird.errors import StateError
from rarebird.store.sqlite import Store
from rarebird.timeutil import iso


def load_profile_state(store: Store, job_id: str, profile: str) -> dict[str, Any] | None:
    """The saved state of ``profile`` for ``job_id`` (None: never saved)."""
    row = store.one(
        "SELECT state FROM profile_state WHERE job_id = ? AND profile = ?", (job_id, profile)
    )
    if row is None:
        return None
    try:
        state = orjson.loads(str(row[0]))
    except orjson.JSONDecodeError as exc:
        raise StateError(
            f"{store.path}: profile {profile!r} state of job {job_id!r}: {exc}"
        ) from exc
    if not isinstance(state, dict):
        raise StateError(
            f"{store.path}: profile {profile!r} state of job {job_id!r} is not an object"
        )
    return state


def save_profile_state(store: Store, job_id: str, profile: str, state: dict[str, Any]) -> None:
    """Write the profile's state (one transaction, nested in the caller's)."""
    with store.transaction():
        store.execute(
            "INSERT INTO profile_state (job_id, profile, version, state, updated) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(job_id, profile) DO UPDATE SET "
            "version = excluded.version, state = excluded.state, updated = excluded.updated",
            (job_id, profile, int(state["version"]), orjson.dumps(state).decode(),
             iso(SYSTEM_CLOCK.now())),
        )  # fmt: skip
