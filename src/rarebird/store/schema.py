"""The store's schema: every table, as one explicit ordered list of migrations.

Each *component* (a group of tables that belong together) has an append-only list of SQL
scripts; a store records, per component, how many of them it has applied
(``schema_versions``), and :meth:`~rarebird.store.sqlite.Store.open` applies the rest in the
order below. Existing steps are never edited: a change is a new step at the end of its
component (or a new component at the end of :data:`MIGRATIONS`), so every store ever written
opens and is upgraded in place. The component names and step counts are those of the stores
written before this list was gathered in one place (when each module registered its own tables
on import), so those stores open unchanged.
"""

from __future__ import annotations

_CORE: tuple[str, ...] = (
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
    # writing a final bucket deletes the job's interim results: without this (empty, nearly
    # always) index that DELETE read every result of the job, once per bucket -- a replay's
    # store time grew with the square of its length
    """
    CREATE INDEX IF NOT EXISTS results_interim ON results (job_id) WHERE is_interim = 1;
    """,
)

_ALERTS: tuple[str, ...] = (
    """
        CREATE TABLE alerts (
            id               TEXT PRIMARY KEY,
            rule_uuid        TEXT NOT NULL,
            rule_id          TEXT NOT NULL,
            record_id        TEXT NOT NULL,
            job_id           TEXT NOT NULL,
            execution_uuid   TEXT NOT NULL,
            created_ms       INTEGER NOT NULL,
            original_time_ms INTEGER NOT NULL,
            user_names       TEXT NOT NULL,
            host_names       TEXT NOT NULL,
            record_score     REAL NOT NULL,
            severity         TEXT NOT NULL,
            workflow_status  TEXT NOT NULL,
            instance_id      TEXT NOT NULL,
            revision         INTEGER NOT NULL DEFAULT 0,
            doc              TEXT NOT NULL
        );
        CREATE INDEX alerts_by_time ON alerts (created_ms);
        CREATE INDEX alerts_by_instance ON alerts (rule_uuid, instance_id, created_ms);
        CREATE INDEX alerts_by_record ON alerts (rule_uuid, record_id);
        CREATE TABLE alert_suppressed (
            rule_uuid  TEXT NOT NULL,
            record_id  TEXT NOT NULL,
            alert_id   TEXT NOT NULL,
            PRIMARY KEY (rule_uuid, record_id)
        );
        """,
    # the alerts page: sorted by anomaly time, score, user or status, filtered by user or
    # host (the host index is scanned instead of the table, whose rows hold whole documents)
    """
    CREATE INDEX IF NOT EXISTS alerts_by_original_time ON alerts (original_time_ms);
    CREATE INDEX IF NOT EXISTS alerts_by_score ON alerts (record_score);
    CREATE INDEX IF NOT EXISTS alerts_by_user ON alerts (user_names, original_time_ms);
    CREATE INDEX IF NOT EXISTS alerts_by_status ON alerts (workflow_status, original_time_ms);
    CREATE INDEX IF NOT EXISTS alerts_by_host ON alerts (host_names, original_time_ms);
    """,
)

_RULES: tuple[str, ...] = (
    """
        CREATE TABLE rule_runs (
            rule_uuid       TEXT NOT NULL,
            started_ms      INTEGER NOT NULL,
            execution_uuid  TEXT NOT NULL,
            rule_id         TEXT NOT NULL,
            summary         TEXT NOT NULL,
            PRIMARY KEY (rule_uuid, started_ms)
        );
        """,
)

_EXCEPTIONS: tuple[str, ...] = (
    """
        CREATE TABLE exception_lists (
            list_id  TEXT PRIMARY KEY,
            doc      TEXT NOT NULL
        );
        CREATE TABLE exception_items (
            item_id  TEXT PRIMARY KEY,
            list_id  TEXT NOT NULL,
            id       TEXT NOT NULL,
            doc      TEXT NOT NULL
        );
        CREATE INDEX exception_items_by_list ON exception_items (list_id);
        CREATE TABLE exception_list_rules (
            list_id  TEXT NOT NULL,
            rule_id  TEXT NOT NULL,
            PRIMARY KEY (list_id, rule_id)
        );
        CREATE TABLE value_lists (
            id           TEXT PRIMARY KEY,
            type         TEXT NOT NULL,
            name         TEXT NOT NULL,
            description  TEXT NOT NULL,
            created_at   TEXT NOT NULL
        );
        CREATE TABLE value_list_items (
            list_id  TEXT NOT NULL,
            value    TEXT NOT NULL,
            PRIMARY KEY (list_id, value)
        );
        """,
)

_SNAPSHOTS: tuple[str, ...] = (
    """
        CREATE TABLE model_snapshots (
            job_id            TEXT NOT NULL,
            snapshot_id       TEXT NOT NULL,
            timestamp_ms      INTEGER NOT NULL,
            latest_record_ms  INTEGER,
            latest_result_ms  INTEGER,
            created           TEXT NOT NULL,
            description       TEXT NOT NULL,
            retain            INTEGER NOT NULL DEFAULT 0,
            state             TEXT NOT NULL,
            service           TEXT,
            PRIMARY KEY (job_id, snapshot_id)
        );
        CREATE INDEX model_snapshots_by_time ON model_snapshots (job_id, timestamp_ms);
        """,
)

_SERVE: tuple[str, ...] = (
    """
        CREATE TABLE serve_state (
            job_id   TEXT PRIMARY KEY,
            state    TEXT NOT NULL,
            updated  TEXT NOT NULL
        );
        CREATE TABLE serve_pending (
            seq      INTEGER PRIMARY KEY,
            job_id   TEXT NOT NULL,
            ts_ms    INTEGER NOT NULL,
            source   TEXT NOT NULL,
            doc      TEXT NOT NULL
        );
        CREATE INDEX serve_pending_by_job ON serve_pending (job_id, ts_ms);
        CREATE TABLE serve_late (
            job_id         TEXT NOT NULL,
            source         TEXT NOT NULL,
            bucket_ms      INTEGER NOT NULL,
            count          INTEGER NOT NULL,
            first_seen_ms  INTEGER NOT NULL,
            last_seen_ms   INTEGER NOT NULL,
            PRIMARY KEY (job_id, source, bucket_ms)
        );
        CREATE TABLE serve_gaps (
            job_id    TEXT NOT NULL,
            source    TEXT NOT NULL,
            start_ms  INTEGER NOT NULL,
            end_ms    INTEGER,
            PRIMARY KEY (job_id, source, start_ms)
        );
        CREATE TABLE serve_interim (
            alert_id       TEXT PRIMARY KEY,
            job_id         TEXT NOT NULL,
            record_id      TEXT NOT NULL,
            bucket_ms      INTEGER NOT NULL,
            interim_score  REAL NOT NULL,
            status         TEXT NOT NULL,
            final_score    REAL
        );
        CREATE INDEX serve_interim_by_bucket ON serve_interim (job_id, bucket_ms, status);
        CREATE TABLE serve_outbox (
            seq       INTEGER PRIMARY KEY AUTOINCREMENT,
            alert_id  TEXT NOT NULL,
            revision  INTEGER NOT NULL,
            doc       TEXT NOT NULL
        );
        CREATE TABLE serve_batches (
            batch_id     TEXT PRIMARY KEY,
            job_id       TEXT NOT NULL,
            received_ms  INTEGER NOT NULL,
            result       TEXT NOT NULL
        );
        """,
)

_DELIVERY: tuple[str, ...] = (
    """
        CREATE TABLE delivery_cursors (
            sink  TEXT PRIMARY KEY,
            seq   INTEGER NOT NULL
        );
        CREATE TABLE dead_letters (
            id        INTEGER PRIMARY KEY AUTOINCREMENT,
            sink      TEXT NOT NULL,
            alert_id  TEXT NOT NULL,
            revision  INTEGER NOT NULL,
            doc       TEXT NOT NULL,
            attempts  INTEGER NOT NULL,
            error     TEXT NOT NULL,
            at_ms     INTEGER NOT NULL
        );
        CREATE INDEX dead_letters_by_sink ON dead_letters (sink, id);
        """,
)

_PROFILES: tuple[str, ...] = (
    """
        CREATE TABLE profile_state (
            job_id   TEXT NOT NULL,
            profile  TEXT NOT NULL,
            version  INTEGER NOT NULL,
            state    TEXT NOT NULL,
            updated  TEXT NOT NULL,
            PRIMARY KEY (job_id, profile)
        );
        """,
)

#: (component, steps), in the order they are applied to a new store.
MIGRATIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("core", _CORE),
    ("alerts", _ALERTS),
    ("rules", _RULES),
    ("exceptions", _EXCEPTIONS),
    ("snapshots", _SNAPSHOTS),
    ("serve", _SERVE),
    ("delivery", _DELIVERY),
    ("profiles", _PROFILES),
)
