"""The embedded store: one SQLite file holding results, model state, kept events and alerts.

Each component registers its own numbered schema migrations under a name
(:func:`register_migrations`); :meth:`Store.open` applies whatever a file lacks, so an old store
is upgraded in place and a new component's tables appear without touching the others.

Writes happen inside :meth:`Store.transaction`, so that a bucket's results, the model state
after it and the alerts they caused are committed together or not at all.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rarebird.errors import StoreError

_MIGRATIONS: dict[str, list[str]] = {}
_LOCK = threading.Lock()


def register_migrations(component: str, steps: list[str]) -> None:
    """Declare ``component``'s schema as an ordered list of SQL scripts (append-only)."""
    with _LOCK:
        have = _MIGRATIONS.get(component)
        if have is not None and have != steps[: len(have)]:
            raise StoreError(f"migrations of {component!r} may only be appended to")
        _MIGRATIONS[component] = list(steps)


register_migrations(
    "core",
    [
        """
        CREATE TABLE results (
            id            TEXT PRIMARY KEY,
            job_id        TEXT NOT NULL,
            result_type   TEXT NOT NULL,
            timestamp_ms  INTEGER NOT NULL,
            score         REAL NOT NULL,
            initial_score REAL NOT NULL,
            probability   REAL,
            is_interim    INTEGER NOT NULL DEFAULT 0,
            field_name    TEXT,
            entity        TEXT,
            doc           TEXT NOT NULL
        );
        CREATE INDEX results_by_time ON results (job_id, result_type, timestamp_ms);
        CREATE INDEX results_by_entity ON results (job_id, result_type, entity, timestamp_ms);
        CREATE TABLE job_state (
            job_id   TEXT PRIMARY KEY,
            version  INTEGER NOT NULL,
            state    TEXT NOT NULL,
            updated  TEXT NOT NULL
        );
        CREATE TABLE events (
            job_id        TEXT NOT NULL,
            timestamp_ms  INTEGER NOT NULL,
            user_name     TEXT,
            host_name     TEXT,
            process_name  TEXT,
            doc           TEXT NOT NULL
        );
        CREATE INDEX events_by_user ON events (job_id, user_name, timestamp_ms);
        CREATE INDEX events_by_host ON events (job_id, host_name, timestamp_ms);
        CREATE INDEX events_by_time ON events (job_id, timestamp_ms);
        CREATE TABLE runs (
            run_id     INTEGER PRIMARY KEY AUTOINCREMENT,
            job_id     TEXT NOT NULL,
            started    TEXT NOT NULL,
            finished   TEXT,
            inputs     TEXT NOT NULL,
            summary    TEXT
        );
        """,
        """
        CREATE TABLE record_details (
            id      TEXT PRIMARY KEY,
            job_id  TEXT NOT NULL,
            doc     TEXT NOT NULL
        );
        """,
        """
        ALTER TABLE events ADD COLUMN key TEXT;
        CREATE UNIQUE INDEX events_by_key ON events (job_id, key);
        """,
        # nothing looks events up by host alone (triage filters the time window), and each
        # index costs every insert: about 10 % of a bulk replay's store time
        """
        DROP INDEX IF EXISTS events_by_host;
        """,
        # the triage pages (store/views): a record's rank among the job's anomalies, the
        # records of a time range best first, the swimlanes by influencer, all from partial
        # (covering) indices; records and influencer results are few beside buckets and kept
        # events, so these cost a replay little
        """
        CREATE INDEX IF NOT EXISTS results_records_by_score ON results (job_id, score)
            WHERE result_type = 'record' AND is_interim = 0;
        CREATE INDEX IF NOT EXISTS results_records_by_time ON results (job_id, timestamp_ms, score)
            WHERE result_type = 'record' AND is_interim = 0;
        CREATE INDEX IF NOT EXISTS results_influencers_by_time
            ON results (job_id, field_name, timestamp_ms, entity, score)
            WHERE result_type = 'influencer' AND is_interim = 0;
        """,
    ],
)


class Store:
    """An open SQLite store. Use :func:`open_store`; close it (or use it as a context manager)."""

    def __init__(self, path: str, conn: sqlite3.Connection) -> None:
        self.path = path
        self.conn = conn
        self._depth = 0

    @classmethod
    def open(cls, path: str) -> Store:
        try:
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"{path}: cannot open store: {exc}") from None
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            store = cls(path, conn)
            store._migrate()
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(f"{path}: not a rarebird store ({exc})") from None
        return store

    def _migrate(self) -> None:
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_versions "
            "(component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
        )
        have = dict(self.conn.execute("SELECT component, version FROM schema_versions"))
        with _LOCK:
            wanted = {k: list(v) for k, v in _MIGRATIONS.items()}
        for component, steps in wanted.items():
            current = have.get(component, 0)
            if current > len(steps):
                raise StoreError(
                    f"{self.path}: written by a newer rarebird ({component} schema v{current}, "
                    f"this version knows v{len(steps)})"
                )
            for version in range(current, len(steps)):
                with self.transaction():
                    for statement in _split_sql(steps[version]):
                        self.conn.execute(statement)
                    self.conn.execute(
                        "INSERT INTO schema_versions (component, version) VALUES (?, ?) "
                        "ON CONFLICT(component) DO UPDATE SET version = excluded.version",
                        (component, version + 1),
                    )

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A (re-entrant) write transaction: all or nothing."""
        if self._depth:
            self._depth += 1
            try:
                yield self.conn
            finally:
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self.conn
        except BaseException:
            self._depth = 0
            self.conn.execute("ROLLBACK")
            raise
        self._depth = 0
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _split_sql(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def open_store(path: str) -> Store:
    """Open (creating and migrating as needed) the store at ``path``."""
    return Store.open(path)
