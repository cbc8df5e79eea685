"""The embedded SQLite store (results, model state, kept events, alerts)."""

from __future__ import annotations

from rarebird.store.sqlite import Store, open_store, register_migrations

__all__ = ["Store", "open_store", "register_migrations"]
