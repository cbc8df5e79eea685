"""The embedded SQLite store: every SQL statement of rarebird lives in this package.

``sqlite`` (the connection, transactions, migrations from ``schema``), then one module per group
of tables: ``results`` (anomaly results, record details), ``events`` (kept events), ``jobs``
(job state), ``alerts``, ``rules`` (rule runs), ``exceptions`` (exception and value lists),
``snapshots`` (model snapshots), ``serve`` (the service's own tables), ``views`` (read-only
queries for the pages and reports) and ``adapters`` (the store seen through the stages'
protocols).
"""

from __future__ import annotations

from rarebird.store.sqlite import Store, open_store

__all__ = ["Store", "open_store"]
