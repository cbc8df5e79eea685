"""The job's counts: Elastic's ``data_counts`` and ``model_size_stats``, as far as they apply."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from rarebird.timeutil import from_epoch_s, iso


@dataclass
class JobStats:
    """Elastic's ``data_counts`` and ``model_size_stats`` of the job, as far as they apply."""

    processed_record_count: int = 0
    missing_field_count: int = 0
    out_of_order_timestamp_count: int = 0
    bucket_count: int = 0
    empty_bucket_count: int = 0
    record_count: int = 0
    earliest_record_timestamp: float | None = None
    latest_record_timestamp: float | None = None
    last_finalised_bucket_end: float | None = None
    model_bytes: int = 0
    peak_model_bytes: int = 0
    memory_status: str = "ok"
    total_by_field_count: int = 0
    bucket_allocation_failures_count: int = 0
    new_values_refused: int = 0
    pruned_by_field_count: int = 0
    renormalisations: int = 0

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> JobStats:
        """Stats as saved, ignoring counters a newer rarebird added."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        for key in ("earliest_record_timestamp", "latest_record_timestamp",
                    "last_finalised_bucket_end"):  # fmt: skip
            if doc[key] is not None:
                doc[key] = iso(from_epoch_s(doc[key]))
        return doc
