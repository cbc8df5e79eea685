"""Alerts: the typed alert value and its ids (model), and the document Kibana's ML rule writes
for an anomaly record (document). Stored by :mod:`rarebird.store.alerts`."""

from __future__ import annotations

from rarebird.alerts.document import Suppression, build_alert, build_reason
from rarebird.alerts.model import (
    CLOSE_REASONS,
    WORKFLOW_STATUSES,
    Alert,
    AlertLookupError,
    RuleIdentity,
    alert_id_for,
    execution_uuid_for,
    rule_uuid_for,
)

__all__ = [
    "CLOSE_REASONS",
    "WORKFLOW_STATUSES",
    "Alert",
    "AlertLookupError",
    "RuleIdentity",
    "Suppression",
    "alert_id_for",
    "build_alert",
    "build_reason",
    "execution_uuid_for",
    "rule_uuid_for",
]
