"""The job's model memory, measured as Elastic's job reports it: bytes, status, the hard limit.

The model's size is measured when a bucket is final (:meth:`MemoryGauge.update`); the limit is
checked for each new by-field value (:meth:`MemoryGauge.at_hard_limit`), counting the values of
the bucket being built as if each were new, so a flood of new names inside one bucket is
bounded too.
"""

from __future__ import annotations

from rarebird.detectors.aggregate import Normalizers
from rarebird.detectors.rare import BYTES_PER_VALUE, RareModel
from rarebird.job.stats import JobStats

#: ``soft_limit`` from this share of ``model_memory_limit`` on
SOFT_LIMIT_FRACTION = 0.6


def model_bytes(model: RareModel, normalizers: Normalizers) -> int:
    """The estimated size of the model and its normalisers."""
    scopes = sum(len(n.max_scores) for n in normalizers.all())
    digests = sum(len(n.low.nodes()) + len(n.high.nodes()) for n in normalizers.all())
    return model.memory_bytes() + 200 * scopes + 120 * digests


class MemoryGauge:
    """What the job's memory status depends on besides its size: whether values were refused
    since the model was last measured, and its size then."""

    def __init__(self, stats: JobStats | None = None) -> None:
        #: new_values_refused when the memory status was last measured
        self.refused_seen = 0 if stats is None else stats.new_values_refused
        #: the model's size when values were last refused (hard_limit until it shrinks)
        self.bytes_at_refusal: int | None = None
        if stats is not None and stats.memory_status == "hard_limit":
            self.bytes_at_refusal = stats.model_bytes

    def update(
        self, stats: JobStats, model: RareModel, normalizers: Normalizers, limit: int
    ) -> None:
        """Measure the model after a final bucket; set the stats' bytes and status."""
        stats.model_bytes = model_bytes(model, normalizers)
        stats.peak_model_bytes = max(stats.peak_model_bytes, stats.model_bytes)
        stats.total_by_field_count = len(model)
        refused = stats.new_values_refused
        if refused > self.refused_seen:
            self.bytes_at_refusal = stats.model_bytes
        self.refused_seen = refused
        full = self.bytes_at_refusal is not None and stats.model_bytes >= self.bytes_at_refusal
        if stats.model_bytes >= limit or full:
            # new values were refused and the model has not shrunk since: Elastic's job reports
            # hard_limit while it does not allocate for new entities
            stats.memory_status = "hard_limit"
        elif stats.model_bytes >= SOFT_LIMIT_FRACTION * limit:
            stats.memory_status = "soft_limit"
        else:
            stats.memory_status = "ok"


def at_hard_limit(stats: JobStats, model: RareModel, limit: int, in_bucket: int = 0) -> bool:
    """At the limit, counting the ``in_bucket`` values of the bucket being built as if each
    were new (the model's size is only measured when a bucket is final)."""
    size = stats.model_bytes
    if in_bucket:
        known = len(model)
        # what a value costs in this model (name, normaliser scopes), or a cautious guess
        per_value = size / known if known >= 100 else 3 * BYTES_PER_VALUE
        size += int(in_bucket * max(per_value, BYTES_PER_VALUE))
    return size >= limit
