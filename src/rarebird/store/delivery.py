"""Delivery of alerts to the outputs (sinks), in the store: where each sink is in the outbox,
and the dead letters.

Tables (component ``delivery``; the outbox itself is ``serve_outbox``):

``delivery_cursors``  per sink (by name: its spec), the outbox sequence number delivered up to
``dead_letters``      alerts a sink refused for good (a 4xx), kept for ``rarebird outputs replay``

An outbox row is deleted once every sink that has a cursor is past it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from rarebird.alerts.model import Alert
from rarebird.store.sqlite import Store


@dataclass(frozen=True)
class DeadLetter:
    """An alert a sink would not take, and why."""

    id: int
    sink: str
    alert: Alert
    attempts: int
    error: str
    at_ms: int


def sink_cursor(store: Store, sink: str) -> int:
    value = store.scalar("SELECT seq FROM delivery_cursors WHERE sink = ?", (sink,))
    return 0 if value is None else int(value)


def register_sink(store: Store, sink: str) -> None:
    """Make ``sink`` known (its cursor at the start of the outbox) so that what waits for it is
    kept and shown even before it ever took an alert."""
    with store.transaction():
        store.execute("INSERT OR IGNORE INTO delivery_cursors (sink, seq) VALUES (?, 0)", (sink,))


def outbox_after(store: Store, seq: int, limit: int) -> list[tuple[int, Alert]]:
    """Outbox rows after ``seq``, oldest first: (sequence number, alert)."""
    rows = store.all(
        "SELECT seq, alert_id, revision, doc FROM serve_outbox WHERE seq > ? ORDER BY seq LIMIT ?",
        (seq, limit),
    )
    return [(int(q), Alert(str(a), orjson.loads(d), int(r))) for q, a, r, d in rows]


def pending_for(store: Store, sink: str) -> int:
    """Outbox rows ``sink`` has not taken yet."""
    return int(
        store.scalar("SELECT count(*) FROM serve_outbox WHERE seq > ?", (sink_cursor(store, sink),))
    )


def advance_cursor(store: Store, sink: str, seq: int) -> None:
    """``sink`` took everything up to ``seq``; outbox rows every sink took are deleted."""
    with store.transaction():
        store.execute(
            "INSERT INTO delivery_cursors (sink, seq) VALUES (?, ?) "
            "ON CONFLICT(sink) DO UPDATE SET seq = max(seq, excluded.seq)",
            (sink, seq),
        )
        store.execute(
            "DELETE FROM serve_outbox WHERE seq <= (SELECT min(seq) FROM delivery_cursors)"
        )


def add_dead_letter(
    store: Store, sink: str, alert: Alert, *, attempts: int, error: str, at_ms: int
) -> None:
    with store.transaction():
        store.execute(
            "INSERT INTO dead_letters (sink, alert_id, revision, doc, attempts, error, at_ms) "
            "VALUES (?,?,?,?,?,?,?)",
            (sink, alert.id, alert.revision, orjson.dumps(alert.doc).decode(), attempts, error,
             at_ms),
        )  # fmt: skip


def dead_letters(store: Store, sink: str | None = None, *, after: int = 0) -> list[DeadLetter]:
    """Dead letters in the order they were kept (of one sink; with ids above ``after``)."""
    rows = store.all(
        "SELECT id, sink, alert_id, revision, doc, attempts, error, at_ms FROM dead_letters "
        + "WHERE id > ? "
        + ("AND sink = ? " if sink is not None else "")
        + "ORDER BY id",
        (after, sink) if sink is not None else (after,),
    )
    return [
        DeadLetter(int(i), str(s), Alert(str(a), orjson.loads(d), int(r)), int(n), str(e), int(t))
        for i, s, a, r, d, n, e, t in rows
    ]


def last_dead_letter_id(store: Store) -> int:
    """The id of the newest dead letter (0 without any): what came after it is new."""
    row = store.one("SELECT max(id) FROM dead_letters")
    return int(row[0]) if row and row[0] is not None else 0


def remove_dead_letters(store: Store, ids: Sequence[int]) -> None:
    with store.transaction():
        store.executemany("DELETE FROM dead_letters WHERE id = ?", [(i,) for i in ids])


@dataclass(frozen=True)
class SinkState:
    """What ``rarebird status`` shows of one sink."""

    sink: str
    delivered_through: int
    pending: int
    dead_letters: int


def delivery_states(store: Store) -> list[SinkState]:
    """Every sink the store has delivered to (or holds dead letters for)."""
    names = {str(r[0]) for r in store.all("SELECT sink FROM delivery_cursors")}
    names |= {str(r[0]) for r in store.all("SELECT DISTINCT sink FROM dead_letters")}
    out = []
    for name in sorted(names):
        dead = int(store.scalar("SELECT count(*) FROM dead_letters WHERE sink = ?", (name,)))
        out.append(SinkState(name, sink_cursor(store, name), pending_for(store, name), dead))
    return out


def outbox_size(store: Store) -> int:
    return int(store.scalar("SELECT count(*) FROM serve_outbox"))
