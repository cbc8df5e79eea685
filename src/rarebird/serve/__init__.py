"""``rarebird serve``: the detection as a long-running service.

Modules: :mod:`.config` (TOML and flags), :mod:`.follow` (tailing files across rotation,
folders, stdin/FIFO, positions), :mod:`.parse` (chunks to events in any input format),
:mod:`.engine` (the deterministic core: datafeed frontier, job, rule schedule, early warning,
one-transaction commits), :mod:`.service` (the loop, catch-up then live, gaps, shutdown),
:mod:`.ingest` (HTTP NDJSON ingest, ``/healthz``, ``/metrics``), :mod:`.metrics` (Prometheus
text format), :mod:`.snapshots` (model snapshots, revert), :mod:`.state` (the service's tables),
:mod:`.log` (JSON log lines).
"""

from __future__ import annotations
