"""Anomaly results with Elastic's field names and document ids (``.ml-anomalies-*``).

Four result types, as Elasticsearch persists them: ``record`` (one per anomalous by-field value
per bucket), ``bucket`` (one per finalised bucket, with its ``bucket_influencers``),
``bucket_influencer`` and ``influencer``. ``to_doc()`` gives the document Elastic would store,
``doc_id`` its ``_id``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from rarebird.timeutil import iso, to_epoch_ms

#: Field names the anomaly results reserve: influencer / by-field values named like these are
#: not copied to the top level of a result document (``ReservedFieldNames``; abridged).
RESERVED_RESULT_FIELDS = frozenset(
    {
        "job_id", "result_type", "timestamp", "bucket_span", "is_interim", "probability",
        "record_score", "initial_record_score", "anomaly_score", "initial_anomaly_score",
        "influencer_score", "initial_influencer_score", "influencer_field_name",
        "influencer_field_value", "influencers", "typical", "actual", "function",
        "function_description", "by_field_name", "by_field_value", "detector_index",
        "multi_bucket_impact", "event_count", "bucket_influencers", "raw_anomaly_score",
    }
)  # fmt: skip


def java_string_hash(text: str) -> int:
    """``java.lang.String.hashCode()``: s[0]*31^(n-1) + ... over UTF-16 units, as a 32-bit int.

    >>> java_string_hash("hello"), java_string_hash("alice"), java_string_hash("")
    (99162322, 92903040, 0)
    """
    h = 0
    data = text.encode("utf-16-be", "surrogatepass")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def java_objects_hash(*values: str | None) -> int:
    """``java.util.Objects.hash(...)`` of strings (null hashes to 0)."""
    h = 1
    for v in values:
        h = (31 * h + (0 if v is None else java_string_hash(v))) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def java_length(text: str) -> int:
    """``String.length()``: UTF-16 code units."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


@dataclass(frozen=True, slots=True)
class Influence:
    """An influencer field and the values of it that co-occurred with an anomaly."""

    field_name: str
    field_values: tuple[str, ...]

    def to_doc(self) -> dict[str, Any]:
        return {"influencer_field_name": self.field_name,
                "influencer_field_values": list(self.field_values)}  # fmt: skip


@dataclass(frozen=True, slots=True)
class AnomalyRecord:
    """One anomalous by-field value in one bucket (``result_type: record``)."""

    job_id: str
    timestamp: datetime
    bucket_span: int
    by_field_name: str
    by_field_value: str
    probability: float
    record_score: float
    initial_record_score: float
    function: str = "rare"
    function_description: str = "rare"
    detector_index: int = 0
    multi_bucket_impact: float = 0.0
    typical: tuple[float, ...] = ()
    actual: tuple[float, ...] = (1.0,)
    influencers: tuple[Influence, ...] = ()
    is_interim: bool = False
    first_occurrence: bool = False
    relative_rarity: float | None = None
    #: event counts behind the record (rarebird's own addition, for triage)
    event_count: int = 0
    #: why it scored as it did (rarebird's own; stored beside the document, not in it)
    details: Mapping[str, Any] | None = field(default=None, compare=False)

    @property
    def doc_id(self) -> str:
        values_hash = java_objects_hash(self.by_field_value, None, None)
        length = java_length(self.by_field_value)
        return (
            f"{self.job_id}_record_{to_epoch_ms(self.timestamp)}_{self.bucket_span}_"
            f"{self.detector_index}_{values_hash}_{length}"
        )

    def influencer_values(self, field_name: str) -> tuple[str, ...]:
        for infl in self.influencers:
            if infl.field_name == field_name:
                return infl.field_values
        return ()

    def with_score(self, score: float) -> AnomalyRecord:
        return replace(self, record_score=score)

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "job_id": self.job_id,
            "result_type": "record",
            "probability": self.probability,
            "multi_bucket_impact": self.multi_bucket_impact,
            "record_score": self.record_score,
            "initial_record_score": self.initial_record_score,
            "bucket_span": self.bucket_span,
            "detector_index": self.detector_index,
            "is_interim": self.is_interim,
            "timestamp": to_epoch_ms(self.timestamp),
            "by_field_name": self.by_field_name,
            "by_field_value": self.by_field_value,
            "function": self.function,
            "function_description": self.function_description,
            "typical": list(self.typical),
            "actual": list(self.actual),
            "influencers": [i.to_doc() for i in self.influencers],
        }
        explanation: dict[str, Any] = {}
        if self.first_occurrence:
            explanation["by_field_first_occurrence"] = True
        if self.relative_rarity is not None:
            explanation["by_field_relative_rarity"] = self.relative_rarity
        if explanation:
            doc["anomaly_score_explanation"] = explanation
        # copied input fields: by field and every influencer field, as value lists
        inputs: dict[str, list[str]] = {}
        if self.by_field_name not in RESERVED_RESULT_FIELDS:
            inputs[self.by_field_name] = [self.by_field_value]
        for infl in self.influencers:
            if infl.field_name in RESERVED_RESULT_FIELDS:
                continue
            have = inputs.setdefault(infl.field_name, [])
            for v in infl.field_values:
                if v not in have:
                    have.append(v)
        doc.update(inputs)
        return doc

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> AnomalyRecord:
        from rarebird.timeutil import from_epoch_ms

        expl = doc.get("anomaly_score_explanation") or {}
        return cls(
            job_id=doc["job_id"],
            timestamp=from_epoch_ms(int(doc["timestamp"])),
            bucket_span=int(doc["bucket_span"]),
            by_field_name=doc["by_field_name"],
            by_field_value=doc["by_field_value"],
            probability=float(doc["probability"]),
            record_score=float(doc["record_score"]),
            initial_record_score=float(doc["initial_record_score"]),
            function=doc.get("function", "rare"),
            function_description=doc.get("function_description", "rare"),
            detector_index=int(doc.get("detector_index", 0)),
            multi_bucket_impact=float(doc.get("multi_bucket_impact", 0.0)),
            typical=tuple(float(x) for x in doc.get("typical", ())),
            actual=tuple(float(x) for x in doc.get("actual", ())),
            influencers=tuple(
                Influence(i["influencer_field_name"], tuple(i["influencer_field_values"]))
                for i in doc.get("influencers", ())
            ),
            is_interim=bool(doc.get("is_interim", False)),
            first_occurrence=bool(expl.get("by_field_first_occurrence", False)),
            relative_rarity=expl.get("by_field_relative_rarity"),
        )


@dataclass(frozen=True, slots=True)
class BucketInfluencer:
    """Score of a bucket seen through one influencer field, or ``bucket_time`` for the bucket."""

    job_id: str
    timestamp: datetime
    bucket_span: int
    influencer_field_name: str
    probability: float
    raw_anomaly_score: float
    anomaly_score: float
    initial_anomaly_score: float
    is_interim: bool = False

    @property
    def doc_id(self) -> str:
        return (
            f"{self.job_id}_bucket_influencer_{to_epoch_ms(self.timestamp)}_{self.bucket_span}_"
            f"{self.influencer_field_name}"
        )

    def to_doc(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "result_type": "bucket_influencer",
            "influencer_field_name": self.influencer_field_name,
            "initial_anomaly_score": self.initial_anomaly_score,
            "anomaly_score": self.anomaly_score,
            "raw_anomaly_score": self.raw_anomaly_score,
            "probability": self.probability,
            "timestamp": to_epoch_ms(self.timestamp),
            "bucket_span": self.bucket_span,
            "is_interim": self.is_interim,
        }


@dataclass(frozen=True, slots=True)
class BucketResult:
    """One finalised (or interim) bucket (``result_type: bucket``)."""

    job_id: str
    timestamp: datetime
    bucket_span: int
    anomaly_score: float
    initial_anomaly_score: float
    event_count: int
    bucket_influencers: tuple[BucketInfluencer, ...] = ()
    is_interim: bool = False
    processing_time_ms: int = 0

    @property
    def doc_id(self) -> str:
        return f"{self.job_id}_bucket_{to_epoch_ms(self.timestamp)}_{self.bucket_span}"

    def to_doc(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "result_type": "bucket",
            "timestamp": to_epoch_ms(self.timestamp),
            "anomaly_score": self.anomaly_score,
            "initial_anomaly_score": self.initial_anomaly_score,
            "bucket_span": self.bucket_span,
            "event_count": self.event_count,
            "is_interim": self.is_interim,
            "bucket_influencers": [b.to_doc() for b in self.bucket_influencers],
            "processing_time_ms": self.processing_time_ms,
        }


@dataclass(frozen=True, slots=True)
class InfluencerResult:
    """Score of one influencer value in one bucket (``result_type: influencer``)."""

    job_id: str
    timestamp: datetime
    bucket_span: int
    influencer_field_name: str
    influencer_field_value: str
    probability: float
    influencer_score: float
    initial_influencer_score: float
    is_interim: bool = False

    @property
    def doc_id(self) -> str:
        value = self.influencer_field_value
        return (
            f"{self.job_id}_influencer_{to_epoch_ms(self.timestamp)}_{self.bucket_span}_"
            f"{self.influencer_field_name}_{java_string_hash(value)}_{java_length(value)}"
        )

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "job_id": self.job_id,
            "result_type": "influencer",
            "influencer_field_name": self.influencer_field_name,
            "influencer_field_value": self.influencer_field_value,
        }
        if self.influencer_field_name not in RESERVED_RESULT_FIELDS:
            doc[self.influencer_field_name] = self.influencer_field_value
        doc.update(
            {
                "influencer_score": self.influencer_score,
                "initial_influencer_score": self.initial_influencer_score,
                "probability": self.probability,
                "bucket_span": self.bucket_span,
                "is_interim": self.is_interim,
                "timestamp": to_epoch_ms(self.timestamp),
            }
        )
        return doc


@dataclass(frozen=True, slots=True)
class BucketResults:
    """Everything one bucket produced: the bucket, its records and its influencer results."""

    bucket: BucketResult
    records: tuple[AnomalyRecord, ...] = ()
    influencers: tuple[InfluencerResult, ...] = ()
    #: per-user event counts in the bucket (for triage; not an Elastic result)
    user_counts: Mapping[str, int] = field(default_factory=dict)


def severity_of(score: float) -> str:
    """Elastic's severity bands for a 0-100 score (``normalizedScoreToSeverity``)."""
    if score < 25:
        return "warning"
    if score < 50:
        return "minor"
    if score < 75:
        return "major"
    return "critical"


def record_summary(rec: AnomalyRecord) -> str:
    return (
        f"{iso(rec.timestamp)} {rec.by_field_name}={rec.by_field_value} "
        f"score={rec.record_score:.1f} p={rec.probability:.3g}"
    )


def docs(items: Sequence[AnomalyRecord | BucketResult | InfluencerResult]) -> list[dict[str, Any]]:
    return [i.to_doc() for i in items]
