"""Interim results: a bucket still being built, scored from the last final model as if it
closed now (rarebird's early warning), or as Elastic's engine scores interim buckets."""

from __future__ import annotations

from typing import Protocol

from rarebird.definitions import JobConfig
from rarebird.detectors.aggregate import Leaf, Normalizers, score_bucket
from rarebird.detectors.rare import RareModel, ValueScore
from rarebird.job.buckets import Bucket
from rarebird.results import BucketResults
from rarebird.timeutil import from_epoch_s


class ScoredJob(Protocol):
    """What interim scoring reads of a job (:class:`rarebird.job.AnomalyJob`)."""

    config: JobConfig
    model: RareModel
    normalizers: Normalizers
    skip_bucket: int | None
    span: int
    by_field: str
    influencers: tuple[str, ...]


def interim_results(
    job: ScoredJob, bucket: Bucket | None, *, elastic: bool
) -> BucketResults | None:
    """Interim results for ``bucket``: nothing is learnt, the normalisers only read (see
    :meth:`AnomalyJob.interim`)."""
    if bucket is None or not bucket.order or bucket.index == job.skip_bucket:
        return None
    if elastic:
        scores = _elastic_interim_scores(job, bucket)
    else:
        scores = job.model.score_as_if_learnt(bucket.index, bucket.order)
        pid = {v: i for i, v in enumerate(bucket.order)}
        scores.sort(key=lambda s: (job.model.person_id(s.value) is None,
                                   job.model.person_id(s.value) or pid[s.value]))  # fmt: skip
    leaves = [
        Leaf(
            score,
            {k: tuple(v) for k, v in bucket.influences[score.value].items()},
            bucket.counts[score.value],
        )
        for score in scores
    ]
    results, _ = score_bucket(
        job_id=job.config.job_id,
        timestamp=from_epoch_s(bucket.index * job.span),
        bucket_span_s=job.span,
        by_field=job.by_field,
        influencer_fields=job.influencers,
        leaves=leaves,
        normalizers=job.normalizers,
        event_count=bucket.event_count,
        is_interim=True,
    )
    return results


def _elastic_interim_scores(job: ScoredJob, bucket: Bucket) -> list[ValueScore]:
    model = job.model
    smallest = model.smallest_probability()
    median = model.sorted.median() if len(model) else 0.0
    known = sorted((v for v in bucket.order if v in model),
                   key=lambda v: model.person_id(v) or 0)  # fmt: skip
    scores = []
    for value in known + [v for v in bucket.order if v not in model]:
        p = model.probability(value) if value in model else smallest
        if p is None:
            continue
        conc = model.concentration(value)
        rarity = median / (conc * model.inv_scale) if conc else 0.0
        scores.append(ValueScore(value, p, value not in model, rarity, conc))
    return scores
