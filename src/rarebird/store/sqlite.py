"""The embedded store: one SQLite file holding results, model state, kept events and alerts.

:class:`Store` is the connection and its transactions; the tables are reached only through the
functions of the other ``rarebird.store`` modules (one module per group of tables), which are the
only places in rarebird that hold SQL. The schema is :data:`rarebird.store.schema.MIGRATIONS`:
opening a store applies whatever steps the file lacks, so an old store is upgraded in place.

Writes happen inside :meth:`Store.transaction`, so that a bucket's results, the model state
after it and the alerts they caused are committed together or not at all.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rarebird.errors import StoreError, StoreFault
from rarebird.store.schema import MIGRATIONS

#: seconds a write waits for another process's write lock before failing
BUSY_TIMEOUT = 30.0


def busy_timeout() -> float:
    """:data:`BUSY_TIMEOUT`, or ``RAREBIRD_STORE_BUSY_TIMEOUT`` (seconds) when set."""
    try:
        return float(os.environ.get("RAREBIRD_STORE_BUSY_TIMEOUT", BUSY_TIMEOUT))
    except ValueError:
        return BUSY_TIMEOUT


#: SQL parameters: a sequence of plain values
Params = Sequence[Any]
Row = tuple[Any, ...]


class Store:
    """An open SQLite store. Use :func:`open_store`; close it (or use it as a context manager).

    The query methods (:meth:`execute`, :meth:`one`, :meth:`all` ...) are for the modules of
    ``rarebird.store``; everything else calls those modules' functions.
    """

    def __init__(self, path: str, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn
        self._depth = 0

    @classmethod
    def open(cls, path: str, *, create: bool = True) -> Store:
        if path != ":memory:" and not create and not os.path.exists(path):
            raise StoreError(f"{path}: no such store")
        try:
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout())
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
            raise _fault(path, exc) from None
        return store

    def _migrate(self) -> None:
        self.execute(
            "CREATE TABLE IF NOT EXISTS schema_versions "
            "(component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
        )
        have: dict[str, int] = dict(self.all("SELECT component, version FROM schema_versions"))
        for component, steps in MIGRATIONS:
            current = have.get(component, 0)
            if current > len(steps):
                raise StoreError(
                    f"{self.path}: written by a newer rarebird ({component} schema v{current}, "
                    f"this version knows v{len(steps)})"
                )
            for version in range(current, len(steps)):
                with self.transaction():
                    for statement in _split_sql(steps[version]):
                        self.execute(statement)
                    self.execute(
                        "INSERT INTO schema_versions (component, version) VALUES (?, ?) "
                        "ON CONFLICT(component) DO UPDATE SET version = excluded.version",
                        (component, version + 1),
                    )

    # --- transactions --------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """A (re-entrant) write transaction: all or nothing."""
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        self.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self
        except BaseException:
            self._depth = 0
            self._rollback()
            raise
        self._depth = 0
        try:
            self.execute("COMMIT")
        except StoreFault:
            self._rollback()  # a COMMIT that failed (disk full) leaves nothing half-written
            raise

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            # SQLite may have rolled back already (it does on some I/O errors)
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")

    @contextmanager
    def durable(self, on: bool = True) -> Iterator[Store]:
        """Commits made inside are durable before they return (``synchronous=FULL``: the WAL is
        fsynced at each commit), for commits whose success is promised to someone -- an HTTP
        batch answered 200. Other commits keep ``NORMAL``: after a power loss the store is
        consistent and at most the last commits are lost, which the inputs hold again (files
        are re-read from the committed positions)."""
        if not on or self.path == ":memory:":
            yield self
            return
        if self._depth:
            raise StoreError(f"{self.path}: durability is chosen before a transaction begins")
        self._conn.execute("PRAGMA synchronous=FULL")
        try:
            yield self
        finally:
            self._conn.execute("PRAGMA synchronous=NORMAL")

    @property
    def synchronous(self) -> int:
        """SQLite's ``synchronous`` level now (1 NORMAL, 2 FULL)."""
        return int(self.scalar("PRAGMA synchronous"))

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    # --- queries (for rarebird.store's modules) --------------------------------------------

    def execute(self, sql: str, params: Params = ()) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, params)
        except (sqlite3.OperationalError, sqlite3.DatabaseError) as exc:
            raise _fault(self.path, exc) from exc

    def executemany(self, sql: str, rows: Iterable[Params]) -> sqlite3.Cursor:
        try:
            return self._conn.executemany(sql, rows)
        except (sqlite3.OperationalError, sqlite3.DatabaseError) as exc:
            raise _fault(self.path, exc) from exc

    def one(self, sql: str, params: Params = ()) -> Row | None:
        try:
            row: Row | None = self._conn.execute(sql, params).fetchone()
        except (sqlite3.OperationalError, sqlite3.DatabaseError) as exc:
            raise _fault(self.path, exc) from exc
        return row

    def all(self, sql: str, params: Params = ()) -> list[Row]:
        try:
            return list(self._conn.execute(sql, params))
        except (sqlite3.OperationalError, sqlite3.DatabaseError) as exc:
            raise _fault(self.path, exc) from exc

    def scalar(self, sql: str, params: Params = ()) -> Any:
        row = self.one(sql, params)
        return None if row is None else row[0]

    def backup(self, target: Store) -> None:
        """Copy this store, whole and consistent, into ``target`` (SQLite's online backup)."""
        self._conn.backup(target._conn)

    # --- lifetime ---------------------------------------------------------------------------

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _fault(path: str, exc: sqlite3.Error) -> Exception:
    """A SQLite failure as rarebird reports it. Programming errors (constraint violations,
    bad SQL) stay what they are; what the file or the machine did becomes a
    :class:`StoreFault` naming the store."""
    if isinstance(exc, sqlite3.IntegrityError | sqlite3.ProgrammingError | sqlite3.InterfaceError):
        return exc
    text = str(exc)
    low = text.lower()
    if "full" in low:
        why = "the disk is full (nothing of the interrupted work was committed; free space and run again)"
    elif "locked" in low or "busy" in low:
        why = "another process kept the store locked for too long (is another rarebird or a sqlite3 shell writing it?)"
    elif "malformed" in low or "not a database" in low or "file is not a database" in low:
        why = f"the file is corrupt or not a rarebird store ({text}); `rarebird store check` tells more"
    elif "readonly" in low or "read-only" in low:
        why = "the store cannot be written (read-only file or folder)"
    elif "i/o" in low:
        why = f"the disk failed while reading or writing the store ({text})"
    elif isinstance(exc, sqlite3.OperationalError) and (
        "no such table" in low or "no such column" in low or "syntax" in low
    ):
        return exc
    else:
        why = text
    return StoreFault(f"{path}: {why}")


def _split_sql(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def open_store(path: str, *, create: bool = True) -> Store:
    """Open (creating and migrating as needed) the store at ``path``; with ``create=False`` a
    missing file is an error instead of a new empty store."""
    return Store.open(path, create=create)


def in_chunks(values: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    """``values`` in slices small enough for one ``IN (...)`` list."""
    for i in range(0, len(values), size):
        yield values[i : i + size]
