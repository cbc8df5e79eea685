"""The ``elasticsearch`` output: alerts written into a live cluster, where Kibana shows them as
its own (``elasticsearch+https://HOST:9200`` or ``es+https://HOST:9200``; options, credentials and
TLS in :mod:`rarebird.sources.es_client`).

What one :meth:`ElasticsearchSink.write` does, as Kibana's rule registry does for its alerts:

1. **Where are they?** Alerts whose concrete index is not known yet are looked up with one
   ``ids`` search per space alias (``_source: false``), as Kibana's ``filterDuplicateAlerts``
   searches before it creates. An alert already there is not created again -- after a rollover
   a ``create`` into the new write index would succeed and duplicate it -- and its ``_index`` is
   remembered for later updates.
2. **One ``_bulk``** through the client's ``streaming_bulk`` helper: ``create`` (with
   ``require_alias``) for alerts not there yet, a partial ``update`` of the fields rarebird
   changed for the others, addressed to the concrete index learnt from the search or from the
   ``create`` response (:mod:`rarebird.sinks.kibana_bulk`).
3. **Per item**: 201 created, 409 on a ``create`` = already there (fine, as Kibana treats it),
   429 retried with exponential backoff (``max_retries``, ``initial_backoff``, ``max_backoff``),
   anything else rejected. Rejected items are reported by id, status, error type and reason in a
   :class:`~rarebird.sinks.base.SinkError` after the rest were delivered; ``serve`` keeps them in
   its outbox and tries again.

With ``dry_run`` nothing is sent: the ``_bulk`` body that would be (without the lookup, so every
change is addressed to the alias) is printed on standard error.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import IO, Any

import orjson

from rarebird.alerts import Alert
from rarebird.sinks.base import SinkError
from rarebird.sinks.kibana_bulk import Action, create_action, update_action
from rarebird.sources.es_client import (
    ElasticError,
    ElasticTarget,
    describe_error,
    make_client,
    printable,
)

#: how many rejected items a SinkError quotes
QUOTED = 5


class ElasticsearchSink:
    """Alerts into a cluster's ``.alerts-security.alerts-<space>`` (see the module doc)."""

    def __init__(
        self,
        target: ElasticTarget,
        *,
        client: Any = None,
        max_retries: int = 5,
        initial_backoff: float = 1.0,
        max_backoff: float = 60.0,
        chunk_size: int = 500,
        dry_run_out: IO[str] | None = None,
    ) -> None:
        self.target = target
        self._client = client
        self.max_retries = max_retries
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.chunk_size = chunk_size
        self._dry_out = dry_run_out
        #: alert id -> the concrete index it is in
        self._index: dict[str, str] = {}
        #: alert id -> the last document delivered (this process), to update only what changed
        self._sent: dict[str, dict[str, Any]] = {}
        #: counts of what was done, for messages and tests
        self.created = 0
        self.updated = 0
        self.existing = 0

    @property
    def name(self) -> str:
        return f"elasticsearch:{self.target.display}"

    def client(self) -> Any:
        if self._client is None:
            try:
                self._client = make_client(self.target)
            except ElasticError as exc:
                raise SinkError(str(exc)) from None
        return self._client

    def write(self, alerts: Sequence[Alert]) -> None:
        if not alerts:
            return
        if self.target.dry_run:
            self._print_dry_run(alerts)
            return
        self._locate([a for a in alerts if a.id not in self._index])
        actions: list[Action] = []
        by_id: dict[str, Alert] = {}
        for alert in alerts:
            where = self._index.get(alert.id)
            if where is None:
                actions.append(create_action(alert, data_streams=self.target.data_streams))
            elif alert.revision == 0:
                self.existing += 1  # sent before (a re-delivery after a restart): already there
                continue
            else:
                update = update_action(alert, where, self._sent.get(alert.id))
                if update is None:  # a workflow change: Kibana's own to make
                    continue
                actions.append(update)
            by_id[alert.id] = alert
        if actions:
            self._send(actions, by_id)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # --- the steps --------------------------------------------------------------------------

    def _locate(self, alerts: Sequence[Alert]) -> None:
        """Learn the concrete index of the alerts already in the cluster (one search per
        space alias)."""
        by_alias: dict[str, list[str]] = {}
        for alert in alerts:
            by_alias.setdefault(alert.alerts_index, []).append(alert.id)
        for alias, ids in by_alias.items():
            try:
                resp = self.client().search(
                    index=alias, query={"ids": {"values": ids}}, source=False, size=len(ids),
                    ignore_unavailable=True, allow_no_indices=True,
                )  # fmt: skip
            except Exception as exc:  # the client's errors, and connection failures
                raise SinkError(
                    f"{self.name}: cannot look up alerts in {alias}: {describe_error(exc)}"
                ) from None
            for hit in _body(resp).get("hits", {}).get("hits", []):
                self._index[str(hit["_id"])] = str(hit["_index"])

    def _send(self, actions: list[Action], by_id: dict[str, Alert]) -> None:
        from elasticsearch import helpers

        rejected: list[str] = []
        try:
            results: Iterable[tuple[bool, dict[str, Any]]] = helpers.streaming_bulk(
                self.client(), [{"meta": m, "body": b} for m, b in actions],
                chunk_size=self.chunk_size, expand_action_callback=_unwrap, raise_on_error=False, raise_on_exception=True,
                max_retries=self.max_retries, initial_backoff=self.initial_backoff,
                max_backoff=self.max_backoff, yield_ok=True,
                require_alias=not self.target.data_streams,
            )  # fmt: skip
            for ok, item in results:
                ((op, info),) = item.items()
                alert_id = str(info.get("_id", ""))
                status = int(info.get("status", 0))
                alert = by_id.get(alert_id)
                if ok or (op == "create" and status == 409):
                    if info.get("_index"):
                        self._index[alert_id] = str(info["_index"])
                    if alert is not None:
                        self._sent[alert_id] = dict(alert.doc)
                    if op == "create":
                        self.created += status != 409
                        self.existing += status == 409
                    else:
                        self.updated += 1
                    continue
                rejected.append(_rejection(op, alert_id, status, info.get("error")))
        except SinkError:
            raise
        except Exception as exc:
            raise SinkError(f"{self.name}: _bulk failed: {describe_error(exc)}") from None
        if rejected:
            more = f" (and {len(rejected) - QUOTED} more)" if len(rejected) > QUOTED else ""
            raise SinkError(
                f"{self.name}: {len(rejected)} alert(s) rejected: "
                + "; ".join(rejected[:QUOTED])
                + more
            )

    def _print_dry_run(self, alerts: Sequence[Alert]) -> None:
        out = self._dry_out or sys.stderr
        lines = [f"rarebird: dry run: POST {self.target.url}/_bulk?require_alias="
                 f"{str(not self.target.data_streams).lower()} (not sent)"]  # fmt: skip
        for alert in alerts:
            pair = (
                create_action(alert, data_streams=self.target.data_streams)
                if alert.revision == 0
                else update_action(alert, None, self._sent.get(alert.id))
            )
            if pair is None:
                continue
            lines.extend(orjson.dumps(part).decode() for part in pair)
            self._sent[alert.id] = dict(alert.doc)
        out.write("\n".join(lines) + "\n")
        out.flush()


def _unwrap(action: bytes | str | dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The bulk helper's ``expand_action_callback``: our actions are already (meta, body)."""
    assert isinstance(action, dict)
    return action["meta"], action["body"]


def _body(resp: Any) -> dict[str, Any]:
    body = getattr(resp, "body", resp)
    return body if isinstance(body, dict) else {}


def _rejection(op: str, alert_id: str, status: int, error: Any) -> str:
    if isinstance(error, dict):
        what = f"{error.get('type', 'error')}: {error.get('reason', '')}".rstrip(": ")
        if error.get("type") == "index_not_found_exception":
            what += (" -- Kibana has not created this space's alerts index yet: open the "
                     "Security app's Alerts page in that space once")  # fmt: skip
    else:
        what = str(error)
    return f"{op} {alert_id[:12]} HTTP {status} {printable(what)}"
