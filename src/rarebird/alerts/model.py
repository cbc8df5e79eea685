"""The alert value, its identity and its ids.

**The id** is Kibana's ``generateId``: ``sha256(index + anomaly _id + String(_version) +
"<spaceId>:<rule saved-object id>")`` (``rule_types/utils/utils.ts``). The anomaly search does
not ask for versions, so ``_version`` is the string ``"undefined"``. rarebird's fixed values
(:class:`RuleIdentity`): index ``.ml-anomalies-shared`` (the shared results index every
module job writes to), space ``default``, and a rule uuid derived from the rule's ``rule_id``
(uuid5 in :data:`RULE_UUID_NAMESPACE`) -- or the real saved-object id of a Kibana rule, which
makes rarebird's alert ids equal to that Kibana's (``--rule-uuid``, the ``id`` of the rule in
Kibana's rule export or its URL; with ``--space`` and ``--anomaly-index`` as that Kibana's). One
anomaly record gives at most one alert per rule, however many overlapping runs see it.

**The workflow** is Kibana's: ``open`` -> ``acknowledged`` -> ``closed`` (and back), kept in
``kibana.alert.workflow_status`` with ``workflow_status_updated_at`` and, when closing,
``workflow_reason`` (:meth:`Alert.with_workflow_status`). ``kibana.alert.workflow_user`` is a
Kibana user *profile id* (a keyword in the alerts-as-data field map) or null: rarebird writes a
profile id only when one is given, and keeps the free-text name of whoever changed the status
in its own field, ``rarebird.workflow.analyst``.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rarebird.definitions.rule import RuleConfig
from rarebird.documents import field_values
from rarebird.errors import RarebirdError
from rarebird.timeutil import iso, parse_timestamp

ANOMALY_INDEX = ".ml-anomalies-shared"
ALERTS_INDEX = ".alerts-security.alerts-default"
#: the alias (or data stream) Kibana writes a space's security alerts to
ALERTS_INDEX_PREFIX = ".alerts-security.alerts-"
DEFAULT_SPACE = "default"
#: ``kibana.version`` written into alerts unless configured: the version of the Kibana that
#: reads them matters to its alert migrations, so set the real one (``--kibana-version``)
DEFAULT_KIBANA_VERSION = "9.1.0"
#: rarebird's own field for the free-text name of whoever changed an alert's workflow status
ANALYST_FIELD = "rarebird.workflow.analyst"
#: uuid5 namespace for rule uuids derived from ``rule_id``
RULE_UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://rarebird.invalid/rule")
#: Kibana's rule-type facts for ML rules (``create_ml_alert_type.ts``)
ML_RULE_TYPE_ID = "siem.mlRule"
ML_RULE_TYPE_NAME = "Machine Learning Rule"
SERVER_APP_ID = "siem"
WORKFLOW_STATUSES = ("open", "acknowledged", "closed")
#: Kibana's reasons for closing an alert (9.x); other text is accepted too
CLOSE_REASONS = (
    "false_positive", "duplicate", "true_positive", "benign_positive", "automated_closure", "other",
)  # fmt: skip


class AlertLookupError(RarebirdError):
    """An alert id (or prefix) that matches no alert, or more than one."""


@dataclass(frozen=True, slots=True)
class RuleIdentity:
    """The values an alert id is derived from, and where alerts say they came from."""

    rule_uuid: str
    space_id: str = DEFAULT_SPACE
    anomaly_index: str = ANOMALY_INDEX
    #: Kibana's public base URL; when set, alerts carry ``kibana.alert.url`` as Kibana's do
    kibana_base_url: str | None = None
    #: ``kibana.version`` of the alerts (the persistence wrapper writes its own version)
    kibana_version: str = DEFAULT_KIBANA_VERSION

    @classmethod
    def for_rule(cls, rule: RuleConfig, **overrides: Any) -> RuleIdentity:
        """The default identity of ``rule``: a stable uuid from its ``rule_id``."""
        overrides = {k: v for k, v in overrides.items() if v is not None}
        rule_uuid = overrides.pop("rule_uuid", None) or rule_uuid_for(rule.rule_id)
        return cls(rule_uuid=rule_uuid, **overrides)

    @property
    def alerts_index(self) -> str:
        return alerts_index_for(self.space_id)


def alerts_index_for(space_id: str) -> str:
    """The alias Kibana writes and reads a space's security alerts under.

    >>> alerts_index_for("secops")
    '.alerts-security.alerts-secops'
    """
    return ALERTS_INDEX_PREFIX + space_id


def rule_uuid_for(rule_id: str) -> str:
    """rarebird's stand-in for a Kibana rule saved-object id: uuid5 over the ``rule_id``.

    >>> rule_uuid_for("c28c4d8c-f014-40ef-88b6-79a1d67cd499")
    'c6387adf-4c8f-501d-84fd-f477235e60be'
    """
    return str(uuid.uuid5(RULE_UUID_NAMESPACE, rule_id))


def generate_alert_id(index: str, doc_id: str, version: str, rule_key: str) -> str:
    """Kibana's ``generateId``: sha256 hex of the four strings concatenated."""
    return hashlib.sha256((index + doc_id + version + rule_key).encode()).hexdigest()


def alert_id_for(record_id: str, identity: RuleIdentity) -> str:
    """The id of the alert a rule makes from the anomaly record ``record_id``."""
    return generate_alert_id(
        identity.anomaly_index, record_id, "undefined", f"{identity.space_id}:{identity.rule_uuid}"
    )


def execution_uuid_for(identity: RuleIdentity, started_at: datetime) -> str:
    """A stable id for the rule execution that started at ``started_at``."""
    return str(uuid.uuid5(RULE_UUID_NAMESPACE, f"{identity.rule_uuid}@{iso(started_at)}"))


@dataclass(frozen=True)
class Alert:
    """One alert: its id and its document (as indexed into Elastic). ``revision`` counts
    changes after creation (suppressed duplicates counted, workflow status)."""

    id: str
    doc: dict[str, Any] = field(compare=False)
    revision: int = 0

    def get(self, path: str) -> list[Any]:
        return field_values(self.doc, path)

    def first(self, path: str) -> Any:
        values = self.get(path)
        return values[0] if values else None

    @property
    def record_id(self) -> str:
        return str(self.doc["kibana.alert.ancestors"][0]["id"])

    @property
    def rule_uuid(self) -> str:
        return str(self.doc["kibana.alert.rule.uuid"])

    @property
    def timestamp(self) -> datetime:
        return parse_timestamp(self.doc["@timestamp"])

    @property
    def original_time(self) -> datetime:
        return parse_timestamp(self.doc["kibana.alert.original_time"])

    @property
    def record_score(self) -> float:
        return float(self.doc.get("record_score", 0.0))

    @property
    def severity(self) -> str:
        return str(self.doc.get("kibana.alert.severity", ""))

    @property
    def workflow_status(self) -> str:
        return str(self.doc.get("kibana.alert.workflow_status", "open"))

    @property
    def instance_id(self) -> str:
        return str(self.doc.get("kibana.alert.instance.id", self.id))

    @property
    def suppressed_count(self) -> int:
        return int(self.doc.get("kibana.alert.suppression.docs_count", 0))

    @property
    def execution_uuid(self) -> str:
        return str(self.doc.get("kibana.alert.rule.execution.uuid", ""))

    def values(self, path: str) -> list[str]:
        return [str(v) for v in self.get(path)]

    @property
    def space_id(self) -> str:
        """The Kibana space the alert belongs to (``kibana.space_ids``)."""
        spaces = self.doc.get("kibana.space_ids") or [DEFAULT_SPACE]
        return str(spaces[0])

    @property
    def alerts_index(self) -> str:
        """The alias of the space's alerts index, where Kibana looks for this alert."""
        return alerts_index_for(self.space_id)

    def with_workflow_status(
        self,
        status: str,
        *,
        now: datetime,
        user: str | None = None,
        reason: str | None = None,
        profile_uid: str | None = None,
    ) -> Alert:
        """This alert after Kibana's "mark as open / acknowledged / closed". ``user`` is a
        free-text name (kept in ``rarebird.workflow.analyst``); ``profile_uid`` a Kibana user
        profile id, the only thing ``kibana.alert.workflow_user`` holds (null without one)."""
        if status not in WORKFLOW_STATUSES:
            raise AlertLookupError(f"unknown workflow status {status!r}")
        doc = dict(self.doc)
        doc["kibana.alert.workflow_status"] = status
        doc["kibana.alert.workflow_status_updated_at"] = iso(now)
        doc["kibana.alert.workflow_user"] = profile_uid or None
        if user:
            doc[ANALYST_FIELD] = user
        else:
            doc.pop(ANALYST_FIELD, None)
        if status == "closed" and reason:
            doc["kibana.alert.workflow_reason"] = reason
        elif status != "closed":
            doc.pop("kibana.alert.workflow_reason", None)
        return Alert(self.id, doc, self.revision + 1)
