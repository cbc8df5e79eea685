"""The ``_bulk`` actions that put rarebird's alerts where Kibana shows them, as Kibana writes its
own: shared by the ``es-bulk`` file and the live ``elasticsearch`` output.

- **Where.** A space's alerts go to ``.alerts-security.alerts-<space>`` (the alert's
  ``kibana.space_ids``): Kibana reads that alias, filtered by space
  (``IndexInfo.getPrimaryAlias(namespace)`` in the rule registry).
- **New alerts** are ``create`` actions, so that an alert sent twice is a harmless 409, with
  ``require_alias: true``: a bulk that ran before Kibana made the alias would otherwise create a
  plain index of that name with dynamic mappings, and Kibana could no longer create its alias
  (``rule_data_client.ts`` sends ``require_alias: !isUsingDataStreams``; its alerts client puts
  ``require_alias: true`` on each ``create``). Where alerts live in data streams (serverless,
  ``data_streams``), ``require_alias`` is off: a data stream is not an alias.
- **Changed alerts** (suppression counts, an early alert confirmed) are partial ``update``
  actions: only the fields rarebird changes (:func:`rarebird.alerts.document.update_document`),
  never the analyst's workflow fields, addressed to the concrete index the alert is in with
  ``require_alias: false`` -- Kibana's suppression update exactly
  (``create_persistence_rule_type_wrapper.ts``). A full ``index`` would overwrite a status an
  analyst set in Kibana, duplicate the alert once the alias rolled over, and is rejected by a
  data stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rarebird.alerts.document import update_document
from rarebird.alerts.model import Alert

Action = tuple[dict[str, Any], dict[str, Any]]


def create_action(alert: Alert, *, data_streams: bool = False) -> Action:
    """``create`` of a new alert into its space's alias (or data stream)."""
    meta: dict[str, Any] = {"_index": alert.alerts_index, "_id": alert.id}
    if not data_streams:
        meta["require_alias"] = True
    return {"create": meta}, alert.doc


def update_action(
    alert: Alert, index: str | None, previous: Mapping[str, Any] | None = None
) -> Action | None:
    """Partial ``update`` of a changed alert in ``index``, the concrete index it is in (None:
    unknown, the alias is named and ``require_alias`` kept -- that reaches the alert only while
    it is in the alias's write index). None when nothing rarebird owns changed (a workflow
    change: Kibana's to make)."""
    doc = update_document(alert.doc, previous)
    if not doc:
        return None
    meta: dict[str, Any] = {"_index": index or alert.alerts_index, "_id": alert.id}
    meta["require_alias"] = index is None
    return {"update": meta}, {"doc": doc}
