"""``rarebird store check``: is a store file whole, and does rarebird understand everything in
it? Read-only (the file is opened with ``mode=ro``: nothing is migrated or repaired).

Checks, each a :class:`Finding` when it fails:

- SQLite's own ``PRAGMA integrity_check`` (pages, indexes, free lists);
- the schema versions: every component known to this rarebird, none newer than it knows
  (an older one is only noted: opening the store upgrades it);
- every job's state and every service state parse as JSON and carry the version this rarebird
  reads;
- rows that point at nothing: record details without their record, outbox rows, early-warning
  rows and dead letters whose alert is missing, results of a job with no state.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson

from rarebird.store.schema import MIGRATIONS


@dataclass(frozen=True)
class Finding:
    """One problem: what was checked and what is wrong (``fatal``: the store is not usable as
    it is)."""

    check: str
    message: str
    fatal: bool = True


@dataclass
class CheckReport:
    path: str
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.fatal for f in self.findings)


#: (check name, SQL counting orphans, what an orphan is) -- run only when the tables exist
_ORPHANS = (
    ("record_details", "record_details", "SELECT count(*) FROM record_details d WHERE NOT EXISTS "
     "(SELECT 1 FROM results r WHERE r.id = d.id)", "record details without their record"),
    ("serve_outbox", "serve_outbox", "SELECT count(*) FROM serve_outbox o WHERE NOT EXISTS "
     "(SELECT 1 FROM alerts a WHERE a.id = o.alert_id)", "outbox rows whose alert is missing"),
    ("serve_interim", "serve_interim", "SELECT count(*) FROM serve_interim i WHERE NOT EXISTS "
     "(SELECT 1 FROM alerts a WHERE a.id = i.alert_id)",
     "early-warning rows whose alert is missing"),
    ("results", "results", "SELECT count(DISTINCT job_id) FROM results r WHERE NOT EXISTS "
     "(SELECT 1 FROM job_state s WHERE s.job_id = r.job_id)", "jobs with results but no state"),
)  # fmt: skip


def check_store(path: str, state_versions: Mapping[str, int]) -> CheckReport:
    """Check the store at ``path``. ``state_versions``: the JSON state versions this rarebird
    reads, by table (``job_state``, ``serve_state``)."""
    report = CheckReport(path)
    if not os.path.exists(path):
        report.findings.append(Finding("file", "no such file"))
        return report
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error as exc:
        report.findings.append(Finding("file", f"cannot open: {exc}"))
        return report
    try:
        _run(conn, report, state_versions)
    except sqlite3.DatabaseError as exc:
        report.findings.append(Finding("sqlite", f"the file cannot be read: {exc}"))
    finally:
        conn.close()
    return report


def _run(conn: sqlite3.Connection, report: CheckReport, versions: Mapping[str, int]) -> None:
    rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check(20)")]
    report.checked.append("integrity")
    if rows != ["ok"]:
        for row in rows:
            report.findings.append(Finding("integrity", row))
        return
    tables = {str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    report.checked.append("schema")
    if "schema_versions" not in tables:
        report.findings.append(Finding("schema", "no schema_versions table: not a rarebird store"))
        return
    have = {
        str(c): int(v) for c, v in conn.execute("SELECT component, version FROM schema_versions")
    }
    known = {name: len(steps) for name, steps in MIGRATIONS}
    for name, version in sorted(have.items()):
        if name not in known:
            report.findings.append(Finding("schema", f"component {name!r} v{version} is unknown "
                                                     "to this rarebird (written by a newer one?)"))  # fmt: skip
        elif version > known[name]:
            report.findings.append(Finding("schema", f"component {name!r} is v{version}; this "
                                                     f"rarebird knows v{known[name]}"))  # fmt: skip
        elif version < known[name]:
            report.notes.append(f"component {name!r} is v{version} (v{known[name]} once opened: "
                                "the store is upgraded in place)")  # fmt: skip
    for table, has_version_column in (("job_state", True), ("serve_state", False)):
        if table not in tables:
            continue
        report.checked.append(table)
        want = versions.get(table)
        query = (
            f"SELECT job_id, version, state FROM {table}"
            if has_version_column
            else f"SELECT job_id, NULL, state FROM {table}"
        )
        for job_id, column_version, text in conn.execute(query):
            try:
                doc = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                report.findings.append(
                    Finding(table, f"job {job_id}: the state is not JSON ({exc})")
                )
                continue
            state_version: object = doc.get("version") if isinstance(doc, dict) else None
            if want is not None and state_version != want:
                report.findings.append(Finding(table, f"job {job_id}: state version {state_version!r}, "
                                                      f"this rarebird reads {want}"))  # fmt: skip
            elif has_version_column and column_version != state_version:
                report.findings.append(Finding(table, f"job {job_id}: the row says version "
                                                      f"{column_version}, the state {state_version}"))  # fmt: skip
    for name, table, sql, what in _ORPHANS:
        needed = {table} | ({"alerts"} if "alerts a" in sql else set())
        needed |= {"results"} if "results r" in sql else set()
        needed |= {"job_state"} if "job_state s" in sql else set()
        if not needed <= tables:
            continue
        report.checked.append(f"orphans:{name}")
        count = int(conn.execute(sql).fetchone()[0])
        if count:
            report.findings.append(Finding("orphans", f"{count} {what}", fatal=False))
