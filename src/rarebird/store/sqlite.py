"""The embedded store: one SQLite file holding results, model state, kept events and alerts.

:class:`Store` is the connection and its transactions; the tables are reached only through the
functions of the other ``rarebird.store`` modules (one module per group of tables), which are the
only places in rarebird that hold SQL. The schema is :data:`rarebird.store.schema.MIGRATIONS`:
opening a store applies whatever steps the file lacks, so an old store is upgraded in place.

Writes happen inside :meth:`Store.transaction`, so that a bucket's results, the model state
after it and the alerts they caused are committed together or not at all.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rarebird.errors import StoreError
from rarebird.store.schema import MIGRATIONS

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
        self._conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self
        except BaseException:
            self._depth = 0
            self._conn.execute("ROLLBACK")
            raise
        self._depth = 0
        self._conn.execute("COMMIT")

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    # --- queries (for rarebird.store's modules) --------------------------------------------

    def execute(self, sql: str, params: Params = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Params]) -> sqlite3.Cursor:
        return self._conn.executemany(sql, rows)

    def one(self, sql: str, params: Params = ()) -> Row | None:
        row: Row | None = self._conn.execute(sql, params).fetchone()
        return row

    def all(self, sql: str, params: Params = ()) -> list[Row]:
        return list(self._conn.execute(sql, params))

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
