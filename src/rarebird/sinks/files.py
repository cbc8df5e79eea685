"""File-like sinks: another rarebird store, NDJSON (file or stdout), an Elasticsearch ``_bulk``
body. Files are appended to, so successive runs accumulate; each ``write`` is flushed."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import IO

import orjson

from rarebird.alerts import Alert
from rarebird.sinks.base import SinkError
from rarebird.sinks.escape import json_bytes
from rarebird.sinks.kibana_bulk import create_action, update_action
from rarebird.store.alerts import insert_alerts, update_alerts
from rarebird.store.sqlite import Store, open_store


class SqliteSink:
    """Alerts into the alerts table of a rarebird store (new ones created, changed ones
    replaced)."""

    def __init__(self, store: Store, *, owned: bool = False) -> None:
        self.store = store
        self._owned = owned

    @classmethod
    def open(cls, path: str) -> SqliteSink:
        return cls(open_store(path), owned=True)

    @property
    def name(self) -> str:
        return f"sqlite:{self.store.path}"

    def write(self, alerts: Sequence[Alert]) -> None:
        with self.store.transaction():
            insert_alerts(self.store, [a for a in alerts if a.revision == 0])
            changed = [a for a in alerts if a.revision > 0]
            insert_alerts(self.store, changed)  # a changed alert this store never saw
            update_alerts(self.store, changed)

    def close(self) -> None:
        if self._owned:
            self.store.close()


class _AppendFile:
    def __init__(self, path: str) -> None:
        self.path = path
        self._fh: IO[bytes] | None = None

    def handle(self) -> IO[bytes]:
        if self._fh is None:
            if self.path == "-":
                self._fh = sys.stdout.buffer
            else:
                try:
                    self._fh = open(self.path, "ab")  # noqa: SIM115 (kept open across writes)
                except OSError as exc:
                    raise SinkError(f"{self.path}: cannot open: {exc.strerror or exc}") from None
        return self._fh

    def write_lines(self, lines: Sequence[bytes]) -> None:
        fh = self.handle()
        try:
            fh.write(b"".join(line + b"\n" for line in lines))
            fh.flush()
        except OSError as exc:
            raise SinkError(f"{self.path}: cannot write: {exc.strerror or exc}") from None

    def close(self) -> None:
        if self._fh is not None and self.path != "-":
            self._fh.close()
        self._fh = None


class NdjsonSink:
    """One alert document per line (a changed alert is written again, whole)."""

    def __init__(self, path: str) -> None:
        self._file = _AppendFile(path)

    @property
    def name(self) -> str:
        return f"ndjson:{self._file.path}"

    def write(self, alerts: Sequence[Alert]) -> None:
        self._file.write_lines([json_bytes(a.doc) for a in alerts])

    def close(self) -> None:
        self._file.close()


class EsBulkSink:
    """An Elasticsearch ``_bulk`` request body with the actions the live ``elasticsearch``
    output sends (:mod:`rarebird.sinks.kibana_bulk`): ``create`` with ``require_alias`` into the
    alert's space's alias for new alerts, a partial ``update`` of the fields rarebird changed
    for changed ones (to the alias: a file cannot know the concrete index, so an update reaches
    an alert only until the alias rolls over). Load it with
    ``curl -H 'Content-Type: application/x-ndjson' --data-binary @FILE ES/_bulk``."""

    def __init__(self, path: str, *, data_streams: bool = False) -> None:
        self._file = _AppendFile(path)
        self.data_streams = data_streams
        #: the last document written per alert id (this process), to send only what changed
        self._sent: dict[str, dict[str, object]] = {}

    @property
    def name(self) -> str:
        return f"es-bulk:{self._file.path}"

    def write(self, alerts: Sequence[Alert]) -> None:
        lines: list[bytes] = []
        for a in alerts:
            if a.revision == 0:
                pair = create_action(a, data_streams=self.data_streams)
            else:
                found = update_action(a, None, self._sent.get(a.id))
                if found is None:
                    continue
                pair = found
            lines.append(orjson.dumps(pair[0]))
            lines.append(json_bytes(pair[1]))
            self._sent[a.id] = dict(a.doc)
        self._file.write_lines(lines)

    def close(self) -> None:
        self._file.close()
