"""Detection rule definitions: Elastic detection-rules TOML, or a Kibana rule export (JSON).

**Where a rule comes from** decides the metadata Kibana shows with its alerts. A rule Kibana
installed from Elastic's prebuilt rules package is ``immutable: true`` with ``rule_source:
{type: "external", is_customized: false}`` (Kibana 8.16+, prebuilt rules customization RFC,
``x-pack/solutions/security/plugins/security_solution/docs/rfcs/detection_response/
prebuilt_rules_customization.md``); a rule created in Kibana is ``immutable: false``,
``rule_source: {type: "internal"}``. A detection-rules TOML has no ``version``,
``related_integrations`` nor ``required_fields`` (detection-rules computes them when it builds
the Fleet package): for Elastic's rules rarebird ships them (``data/prebuilt_rules.json``, from
the published asset), so the packaged rule's alerts carry what the installed prebuilt rule's do.
A Kibana export (``--rule rules_export.ndjson``) carries everything itself: its ``version``,
``immutable``, ``rule_source``, dates, authors and ``revision`` are taken as they are.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from rarebird.definitions._common import packaged_path, read_json_file
from rarebird.definitions.reader import Reader
from rarebird.errors import DefinitionError
from rarebird.timeutil import iso, parse_date_math_offset, parse_duration, parse_timestamp

#: the shortest rule interval accepted
MIN_INTERVAL = timedelta(seconds=1)

DEFAULT_RULE_FILE = "discovery_ml_linux_system_network_connection_discovery.toml"
PREBUILT_RULES_FILE = "prebuilt_rules.json"
EA_RULE_FILE = "discovery_ml_linux_system_network_connection_discovery_ea.toml"

#: Kibana's default when a rule does not set max_signals
DEFAULT_MAX_SIGNALS = 100
SEVERITIES = ("low", "medium", "high", "critical")

_RULE_KEYS = frozenset(
    {
        "actions", "alert_suppression", "anomaly_threshold", "author", "building_block_type",
        "description", "enabled", "exceptions_list", "false_positives", "filters", "from",
        "interval", "investigation_fields", "license", "machine_learning_job_id", "max_signals",
        "meta", "name", "note", "references", "related_integrations", "required_fields",
        "risk_score", "risk_score_mapping", "rule_id", "rule_name_override", "setup",
        "severity", "severity_mapping", "tags", "threat", "throttle", "timeline_id",
        "timeline_title", "timestamp_override", "to", "type", "version", "output_index",
        "namespace", "id", "created_at", "created_by", "updated_at", "updated_by", "immutable",
        "rule_source", "revision", "response_actions", "outcome", "alias_target_id",
        "alias_purpose", "execution_summary", "license_type",
    }
)  # fmt: skip
_METADATA_KEYS = frozenset(
    {
        "creation_date", "integration", "maturity", "updated_date", "min_stack_version",
        "min_stack_comments", "deprecation_date", "comments", "query_schema_validation",
        "bypass_bbr_timing",
    }
)  # fmt: skip
_SUPPRESSION_KEYS = frozenset({"group_by", "duration", "missing_fields_strategy"})
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True, slots=True)
class AlertSuppression:
    """Kibana's alert suppression: group by 1-3 fields, for a duration (or per run)."""

    group_by: tuple[str, ...]
    duration: timedelta | None = None
    missing_fields_strategy: str = "suppress"


@dataclass(frozen=True, slots=True)
class ExceptionListRef:
    id: str
    list_id: str
    namespace_type: str = "single"
    type: str = "detection"


@dataclass(frozen=True)
class RuleConfig:
    """A machine-learning detection rule, with Kibana's parameter names and defaults."""

    rule_id: str
    name: str
    anomaly_threshold: float
    machine_learning_job_id: tuple[str, ...]
    interval: timedelta
    lookback: timedelta  # from "now-45m" -> 45 minutes
    from_: str = "now-45m"
    to: str = "now"
    max_signals: int = DEFAULT_MAX_SIGNALS
    risk_score: int = 21
    severity: str = "low"
    description: str = ""
    tags: tuple[str, ...] = ()
    threat: tuple[dict[str, Any], ...] = ()
    note: str = ""
    setup: str = ""
    false_positives: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    author: tuple[str, ...] = ()
    license: str = ""
    version: int = 1
    enabled: bool = True
    exceptions_list: tuple[ExceptionListRef, ...] = ()
    alert_suppression: AlertSuppression | None = None
    severity_mapping: tuple[dict[str, Any], ...] = ()
    risk_score_mapping: tuple[dict[str, Any], ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    related_integrations: tuple[dict[str, Any], ...] = ()
    required_fields: tuple[dict[str, Any], ...] = ()
    #: Kibana's ``immutable`` (deprecated but still written): a prebuilt rule
    immutable: bool = False
    #: ``rule_source.type``: ``external`` (prebuilt) or ``internal`` (made in Kibana)
    rule_source_type: str = "internal"
    #: ``rule_source.is_customized`` of an external rule
    is_customized: bool = False
    #: the rule saved object's dates and authors, when known (a Kibana export; for a TOML the
    #: dates come from its metadata); ISO 8601 UTC
    created_at: str | None = None
    updated_at: str | None = None
    created_by: str | None = None
    updated_by: str | None = None
    #: the rule saved object's revision (``kibana.alert.rule.revision``)
    revision: int = 0

    def rule_source(self) -> dict[str, Any]:
        """``rule_source`` as Kibana returns it (snake case)."""
        if self.rule_source_type == "external":
            return {"type": "external", "is_customized": self.is_customized}
        return {"type": "internal"}

    def parameters(self) -> dict[str, Any]:
        """The rule's parameters as Kibana stores them (``kibana.alert.rule.parameters``)."""
        params: dict[str, Any] = {
            "anomaly_threshold": self.anomaly_threshold,
            "machine_learning_job_id": list(self.machine_learning_job_id),
            "description": self.description,
            "risk_score": self.risk_score,
            "severity": self.severity,
            "license": self.license,
            "author": list(self.author),
            "false_positives": list(self.false_positives),
            "from": self.from_,
            "rule_id": self.rule_id,
            "max_signals": self.max_signals,
            "risk_score_mapping": list(self.risk_score_mapping),
            "severity_mapping": list(self.severity_mapping),
            "threat": list(self.threat),
            "to": self.to,
            "references": list(self.references),
            "version": self.version,
            "exceptions_list": [
                {
                    "id": e.id,
                    "list_id": e.list_id,
                    "namespace_type": e.namespace_type,
                    "type": e.type,
                }
                for e in self.exceptions_list
            ],  # fmt: skip
            "immutable": self.immutable,
            "rule_source": self.rule_source(),
            "related_integrations": list(self.related_integrations),
            "required_fields": list(self.required_fields),
            "setup": self.setup,
            "type": "machine_learning",
        }
        if self.note:
            params["note"] = self.note
        if self.alert_suppression is not None:
            sup: dict[str, Any] = {
                "group_by": list(self.alert_suppression.group_by),
                "missing_fields_strategy": self.alert_suppression.missing_fields_strategy,
            }
            if self.alert_suppression.duration is not None:
                sup["duration"] = {
                    "value": int(self.alert_suppression.duration.total_seconds() // 60),
                    "unit": "m",
                }
            params["alert_suppression"] = sup
        return params


def load_rule(path: str | None = None) -> RuleConfig:
    """Load a rule: detection-rules TOML, or a Kibana export (JSON / NDJSON, first rule)."""
    path = path or packaged_path(DEFAULT_RULE_FILE)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise DefinitionError(path, None, f"cannot read: {exc.strerror or exc}") from None
    if path.endswith((".json", ".ndjson")) or text.lstrip().startswith("{"):
        first = text.strip().splitlines()[0] if path.endswith(".ndjson") else text
        try:
            doc = json.loads(first)
        except json.JSONDecodeError as exc:
            raise DefinitionError(
                path, None, f"invalid JSON: {exc.msg} (line {exc.lineno})"
            ) from None
        if not isinstance(doc, dict):
            raise DefinitionError(path, None, "expected a rule object")
        return rule_from_dict(doc, None, path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DefinitionError(path, None, f"invalid TOML: {exc}") from None
    meta = Reader(path, data.get("metadata") or {}, "metadata.")
    meta.check_keys(_METADATA_KEYS)
    unknown = set(data) - {"metadata", "rule", "transform"}
    if unknown:
        raise DefinitionError(path, sorted(unknown)[0], "unknown table")
    rule = data.get("rule")
    if not isinstance(rule, dict):
        raise DefinitionError(path, "rule", "a [rule] table is required")
    return rule_from_dict(rule, dict(meta.data), path, prebuilt=_prebuilt(rule.get("rule_id")))


def _prebuilt(rule_id: object) -> dict[str, Any] | None:
    """What the published prebuilt rule asset adds to a detection-rules TOML of ``rule_id``
    (None for a rule that is not one of Elastic's prebuilt rules rarebird knows)."""
    if not isinstance(rule_id, str):
        return None
    table = read_json_file(packaged_path(PREBUILT_RULES_FILE))
    entry = table.get(rule_id)
    return entry if isinstance(entry, dict) else None


def _toml_date(value: object) -> str | None:
    """A detection-rules metadata date (``2020/09/03``) as ISO 8601 UTC; None when absent or
    not a date (an empty string would be rejected by the alerts index's date mapping)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return iso(parse_timestamp(value.strip().replace("/", "-")))
    except ValueError:
        return None


def rule_from_dict(
    doc: dict[str, Any],
    metadata: dict[str, Any] | None = None,
    path: str = "<rule>",
    *,
    prebuilt: dict[str, Any] | None = None,
) -> RuleConfig:
    """A rule from its fields: a TOML's ``[rule]`` table with its ``[metadata]`` (``prebuilt``:
    the packaged asset metadata of an Elastic prebuilt rule), or one rule of a Kibana export
    (``metadata`` None)."""
    r = Reader(path, doc, "rule.")
    r.check_keys(_RULE_KEYS)
    rtype = r.string("type", "machine_learning")
    if rtype != "machine_learning":
        raise r.fail("type", f"rarebird runs machine_learning rules, not {rtype!r}")
    threshold = r.number("anomaly_threshold", required=True)
    assert threshold is not None
    if not 0 <= threshold <= 100:
        raise r.fail("anomaly_threshold", "must be between 0 and 100")
    jobs = r.str_list("machine_learning_job_id")
    if not jobs:
        raise r.fail("machine_learning_job_id", "is required")
    interval_raw = r.string("interval", "5m") or "5m"
    try:
        interval = parse_duration(interval_raw)
    except ValueError as exc:
        raise r.fail("interval", str(exc)) from None
    if interval < MIN_INTERVAL:
        # Kibana's scheduler does not run a rule more often than this either; "0s" would
        # divide by zero on the schedule grid and "1ms" would make millions of runs
        raise r.fail(
            "interval", f"{interval_raw!r} is too short: a rule runs at most once a second"
        )
    from_ = r.string("from", "now-6m") or "now-6m"
    to = r.string("to", "now") or "now"
    try:
        lookback = -parse_date_math_offset(from_)
        to_offset = parse_date_math_offset(to)
    except ValueError as exc:
        raise r.fail("from", str(exc)) from None
    if to_offset != timedelta(0):
        raise r.fail("to", "only 'now' is supported")
    if lookback <= timedelta(0):
        raise r.fail("from", "must be in the past, e.g. 'now-45m'")
    max_signals = r.integer("max_signals", DEFAULT_MAX_SIGNALS)
    assert max_signals is not None
    if max_signals < 1:
        raise r.fail("max_signals", "must be at least 1")
    risk = r.integer("risk_score", 21)
    assert risk is not None
    if not 0 <= risk <= 100:
        raise r.fail("risk_score", "must be between 0 and 100")
    severity = r.string("severity", "low") or "low"
    if severity not in SEVERITIES:
        raise r.fail("severity", f"must be one of {', '.join(SEVERITIES)}")
    threat = r.raw("threat") or []
    if not isinstance(threat, list) or not all(isinstance(t, dict) for t in threat):
        raise r.fail("threat", "expected a list of tables")
    exceptions = []
    for item in r.obj_list("exceptions_list"):
        exceptions.append(
            ExceptionListRef(
                id=item.string("id", "") or item.req_string("list_id"),
                list_id=item.req_string("list_id"),
                namespace_type=item.string("namespace_type", "single") or "single",
                type=item.string("type", "detection") or "detection",
            )
        )
    suppression = None
    sup = r.obj("alert_suppression")
    if sup is not None:
        sup.check_keys(_SUPPRESSION_KEYS)
        group_by = sup.str_list("group_by")
        if not 1 <= len(group_by) <= 3:
            raise sup.fail("group_by", "between 1 and 3 fields are required")
        duration = None
        dur = sup.obj("duration")
        if dur is not None:
            value = dur.integer("value", required=True)
            unit = dur.req_string("unit")
            if unit not in _DURATION_UNITS:
                raise dur.fail("unit", "expected s, m or h")
            assert value is not None
            duration = timedelta(seconds=value * _DURATION_UNITS[unit])
        strategy = sup.string("missing_fields_strategy", "suppress") or "suppress"
        if strategy not in ("suppress", "doNotSuppress"):
            raise sup.fail("missing_fields_strategy", "expected 'suppress' or 'doNotSuppress'")
        suppression = AlertSuppression(group_by, duration, strategy)
    fps = r.str_list("false_positives")
    origin = _origin(r, metadata, prebuilt)
    return RuleConfig(
        rule_id=r.req_string("rule_id"),
        name=r.req_string("name"),
        anomaly_threshold=threshold,
        machine_learning_job_id=jobs,
        interval=interval,
        lookback=lookback,
        from_=from_,
        to=to,
        max_signals=max_signals,
        risk_score=risk,
        severity=severity,
        description=(r.string("description", "") or "").strip(),
        tags=r.str_list("tags"),
        threat=tuple(threat),
        note=r.string("note", "") or "",
        setup=r.string("setup", "") or "",
        false_positives=tuple(" ".join(fp.split()) for fp in fps),
        references=r.str_list("references"),
        author=r.str_list("author"),
        license=r.string("license", "") or "",
        version=r.integer("version", None) or (prebuilt or {}).get("version") or 1,
        enabled=r.flag("enabled", True),
        exceptions_list=tuple(exceptions),
        alert_suppression=suppression,
        severity_mapping=tuple(r.raw("severity_mapping") or ()),
        risk_score_mapping=tuple(r.raw("risk_score_mapping") or ()),
        metadata=dict(metadata or {}),
        source=path,
        **origin,
    )


def _dict_list(r: Reader, key: str) -> tuple[dict[str, Any], ...] | None:
    raw = r.raw(key)
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(x, dict) for x in raw):
        raise r.fail(key, "expected a list of objects")
    return tuple(raw)


def _export_date(r: Reader, key: str) -> str | None:
    value = r.string(key)
    if value is None or not value.strip():
        return None
    try:
        return iso(parse_timestamp(value))
    except ValueError:
        raise r.fail(key, f"not a date: {value!r}") from None


def _origin(
    r: Reader, metadata: dict[str, Any] | None, prebuilt: dict[str, Any] | None
) -> dict[str, Any]:
    """The RuleConfig fields that say where the rule comes from (see the module docstring)."""
    integrations = _dict_list(r, "related_integrations")
    required = _dict_list(r, "required_fields")
    out: dict[str, Any] = {
        "related_integrations": integrations
        if integrations is not None
        else tuple((prebuilt or {}).get("related_integrations") or ()),
        "required_fields": required
        if required is not None
        else tuple((prebuilt or {}).get("required_fields") or ()),
    }
    source = r.obj("rule_source")
    if source is not None:  # a Kibana 8.16+ export
        kind = source.string("type", "internal") or "internal"
        if kind not in ("internal", "external"):
            raise source.fail("type", "expected 'internal' or 'external'")
        out["rule_source_type"] = kind
        out["is_customized"] = source.flag("is_customized", False)
        out["immutable"] = r.flag("immutable", kind == "external")
    elif r.raw("immutable") is not None:  # an older export: immutable alone says it
        out["immutable"] = r.flag("immutable", False)
        out["rule_source_type"] = "external" if out["immutable"] else "internal"
    elif prebuilt is not None:
        out["immutable"] = True
        out["rule_source_type"] = "external"
    if metadata is not None:
        out["created_at"] = _toml_date(metadata.get("creation_date"))
        out["updated_at"] = _toml_date(metadata.get("updated_date"))
    else:
        out["created_at"] = _export_date(r, "created_at")
        out["updated_at"] = _export_date(r, "updated_at")
        out["created_by"] = r.string("created_by")
        out["updated_by"] = r.string("updated_by")
        out["revision"] = r.integer("revision", 0) or 0
    return out
